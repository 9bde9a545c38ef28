"""``clinic-server bench --login-flood``: a kiosk's latency while someone guesses passwords.

The server runs as in production: ``clinic-server serve`` in a child process, the kiosk API in
that process and the staff dashboard in a process of its own, on SQLite or on the PostgreSQL
given with ``--database``. One kiosk (a process of its own, as in ``clinic-server bench``)
does challenge -> card signature -> verify in a loop for ``seconds``, once while nothing else
happens and once while a separate process posts wrong passwords to the dashboard's login form
from 8 loopback addresses, 2 connections each. Each round prints both latency distributions
and the ratio of their p99s; ``rounds`` repeats this with fresh addresses (the throttle
remembers an address for an hour, in the database: a second run on the same PostgreSQL
database picks other addresses of 127/8 at random). The last line gives the median ratio of
the rounds: one round's p99 is the worst 1 % of a few seconds, which a stall of the machine's
disk or a neighbour on its host can move in the quiet half as much as in the flooded one.
Everything stops by itself.
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from testbed.bench.clinic import _prepare, _ServerProcess, _worker, _WorkerJob, percentile

#: the flood's shape: 8 source addresses, 2 keep-alive connections each
FLOOD_ADDRESSES = 8
FLOOD_CONNECTIONS = 2
MAX_ROUNDS = 10


@dataclass(frozen=True)
class FloodRound:
    quiet_checks: int
    quiet_p50_ms: float
    quiet_p99_ms: float
    flood_checks: int
    flood_p50_ms: float
    flood_p99_ms: float
    flood_max_ms: float
    errors: int
    #: what the login form answered the guesses: heard (checked and refused), throttled...
    guesses: dict[str, int]

    @property
    def p99_ratio(self) -> float:
        return self.flood_p99_ms / self.quiet_p99_ms if self.quiet_p99_ms else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "p99_ratio": round(self.p99_ratio, 2)}


def _flood_process(staff_url: str, server_ca: Path, seconds: float, network: str) -> Any:
    addresses = ",".join(f"{network}.{n}" for n in range(1, FLOOD_ADDRESSES + 1))
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "testbed.login_flood",
            staff_url,
            str(server_ca),
            str(seconds),
            addresses,
            str(FLOOD_CONNECTIONS),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


def _stats(latencies_s: list[float]) -> tuple[int, float, float, float]:
    ms = sorted(x * 1000 for x in latencies_s)
    return (
        len(ms),
        round(percentile(ms, 50), 2),
        round(percentile(ms, 99), 2),
        round(ms[-1], 2) if ms else 0.0,
    )


def run_login_flood(
    *, seconds: float = 5.0, rounds: int = 2, database: str | None = None
) -> list[FloodRound]:
    if not 1 <= seconds <= 120:
        raise ValueError("seconds per measurement: 1-120")
    if not 1 <= rounds <= MAX_ROUNDS:
        raise ValueError(f"rounds: 1-{MAX_ROUNDS}")
    first_network = 256 * (16 + secrets.randbelow(224)) + 1  # 127.16.0.0-127.239.255.255
    results: list[FloodRound] = []
    with tempfile.TemporaryDirectory(prefix="clinic-bench-flood-") as tmp:
        setup = _prepare(Path(tmp), 1, database)
        server = _ServerProcess(setup.data_dir, database, staff=True)
        server_ca = setup.data_dir / "server-ca.pem"
        device = str(setup.root / "devices" / "bench-000.pem")

        def job(start_in: float) -> _WorkerJob:
            return _WorkerJob(
                (f"https://127.0.0.1:{server.kiosk_port}",),
                str(server_ca),
                (device,),
                setup.card_key_pem,
                setup.card_cert_der,
                time.time() + start_in,
                seconds,
            )

        try:
            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
                for round_ in range(rounds):
                    quiet, quiet_errors = pool.submit(_worker, job(2.0)).result(seconds + 60)
                    network = first_network + round_
                    flood = _flood_process(
                        f"https://127.0.0.1:{server.staff_port}",
                        server_ca,
                        seconds + 3.0,
                        f"127.{network // 256}.{network % 256}",
                    )
                    try:
                        loaded, loaded_errors = pool.submit(_worker, job(1.5)).result(seconds + 60)
                        out, _ = flood.communicate(timeout=seconds + 60)
                    finally:
                        if flood.poll() is None:
                            flood.kill()
                            flood.wait()
                    q_n, q_p50, q_p99, _ = _stats(quiet)
                    l_n, l_p50, l_p99, l_max = _stats(loaded)
                    results.append(
                        FloodRound(
                            quiet_checks=q_n,
                            quiet_p50_ms=q_p50,
                            quiet_p99_ms=q_p99,
                            flood_checks=l_n,
                            flood_p50_ms=l_p50,
                            flood_p99_ms=l_p99,
                            flood_max_ms=l_max,
                            errors=quiet_errors + loaded_errors,
                            guesses=dict(json.loads(out)["outcomes"]) if out else {},
                        )
                    )
        finally:
            server.stop()
    return results


def print_rounds(results: list[FloodRound], backend: str) -> None:
    print(
        f"one kiosk (challenge + card signature + verify) on {backend}, quiet and during a"
        f" login flood from {FLOOD_ADDRESSES} addresses x {FLOOD_CONNECTIONS} connections"
        " (dashboard in its own process)"
    )
    print(
        f"{'round':>5} {'quiet':>6} {'p50':>7} {'p99':>7} {'flood':>6} {'p50':>7} {'p99':>7}"
        f" {'max':>7} {'ratio':>6} {'errors':>6}  guesses"
    )
    for n, r in enumerate(results, 1):
        print(
            f"{n:>5} {r.quiet_checks:>6} {r.quiet_p50_ms:>7.1f} {r.quiet_p99_ms:>7.1f}"
            f" {r.flood_checks:>6} {r.flood_p50_ms:>7.1f} {r.flood_p99_ms:>7.1f}"
            f" {r.flood_max_ms:>7.1f} {r.p99_ratio:>6.2f} {r.errors:>6}  {r.guesses}"
        )
    ratios = sorted(r.p99_ratio for r in results)
    print(
        f"median p99 ratio {statistics.median(ratios):.2f} over {len(ratios)} round(s)"
        f" (lowest {ratios[0]:.2f}, highest {ratios[-1]:.2f})"
    )
