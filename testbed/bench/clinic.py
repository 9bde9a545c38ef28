"""``clinic-server bench``: verifications per second and latency, on loopback over TLS.

Sets up a throw-away clinic (own CAs, one simulated JPKI CA and card, one insured person) in a
temporary folder, starts ``clinic-server serve`` on it as a separate process on free loopback
ports, and drives it with N concurrent kiosks: each kiosk is a thread with its own device
certificate, mutual-TLS keep-alive connection and ``kiosk.clinic_client.ClinicClient``, doing
challenge -> card signature (RSA-2048, the pre-made card key) -> verify in a loop, as fast as
it can. The kiosks run in two worker processes so the client side is not held back by one
interpreter lock. The latency of one verification is the whole exchange a kiosk waits for:
challenge, signing and verify. Each run stops by itself after ``seconds``.

``--instances N`` starts N servers on the one database (each its own ``clinic-server serve``
process) and spreads the kiosks over them, kiosk i on instance i mod N, as a chain of clinics
runs them (docs/scale-out.md). On SQLite the instances share the file (one writer at a time);
on PostgreSQL they share the database server.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import math
import multiprocessing
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from testbed.bench import cpu_share

WARMUP_VERIFICATIONS = 3
START_DELAY_S = 1.5


@dataclass(frozen=True)
class BenchResult:
    kiosks: int
    instances: int
    seconds: float
    verifications: int
    errors: int
    per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    #: CPU ms per verification of the server, the database and the kiosks, and how busy the
    #: machine was (testbed.bench.cpu_share); empty where /proc cannot tell
    cpu: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class _Setup:
    root: Path
    data_dir: Path
    card_key_pem: bytes
    card_cert_der: bytes


def _prepare(root: Path, kiosks: int, database: str | None) -> _Setup:
    """A clinic with ``kiosks`` device certificates, a JPKI CA, a card and its record."""
    import json

    from cryptography.hazmat.primitives import serialization

    from clinic.cli import initialise
    from clinic.config import config_from
    from clinic.devices import DeviceRegistry
    from clinic.national.simulated import InsuredEntry, load_insured
    from clinic.pki import CertificateAuthority, cert_pem, write_private
    from clinic.server import open_database
    from kiosk.sim.pki import TestJpkiCa, new_rsa_key

    now = dt.datetime.now(dt.UTC)
    ca = TestJpkiCa.create(now=now)
    ca.save(root / "jpki")
    crl = ca.crl(
        [], this_update=now - dt.timedelta(hours=1), next_update=now + dt.timedelta(days=1)
    )
    (root / "jpki" / "crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    card_key = new_rsa_key()
    card_cert = ca.issue_user_certificate(
        card_key.public_key(),
        not_before=now - dt.timedelta(days=30),
        not_after=now + dt.timedelta(days=365),
    )
    data_dir = root / "clinic"
    initialise(
        data_dir,
        admin="bench-admin",
        password=secrets.token_urlsafe(18),
        jpki_ca=[str(root / "jpki" / "jpki-ca.pem")],
        jpki_crl=[str(root / "jpki" / "crl.pem")],
        database=database,
    )
    config = config_from(data_dir, {})
    db = open_database(config)
    try:
        record = json.loads(
            '{"InsuredCardClassification": "01", "InsurerNumber": "06139999",'
            ' "InsurerName": "ベンチ健康保険組合", "InsuredPartialContributionRatio": "030",'
            ' "PersonalFamilyClassification": "1", "Name": "見本 太郎"}'
        )
        load_insured(
            db,
            iter(
                [
                    InsuredEntry(
                        "bench-card",
                        card_cert.issuer.rfc4514_string(),
                        card_cert.serial_number,
                        1,
                        (record,),
                    )
                ]
            ),
            now=time.time(),
        )
        device_ca = CertificateAuthority.load(config.paths.device_ca, config.paths.device_ca_key)
        registry = DeviceRegistry(db, device_ca.certificate, clock=time.time)
        devices = root / "devices"
        devices.mkdir()
        for index in range(kiosks):
            issued = registry.issue(device_ca, f"bench-{index:03d}")
            write_private(devices / f"bench-{index:03d}.key.pem", issued.key_pem)
            (devices / f"bench-{index:03d}.pem").write_bytes(cert_pem(issued.certificate))
    finally:
        db.close()
    key_pem = card_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return _Setup(root, data_dir, key_pem, card_cert.public_bytes(serialization.Encoding.DER))


class _ServerProcess:
    """``clinic-server serve`` in a child process; stopped with SIGTERM."""

    def __init__(self, data_dir: Path, database: str | None, *, staff: bool = False) -> None:
        command = [
            sys.executable,
            "-m",
            "clinic.cli",
            "--data-dir",
            str(data_dir),
            *(["--database", database] if database else []),
            "serve",
            "--kiosk-port",
            "0",
            "--staff-port",
            "0",
            "--log-level",
            "warning",
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        ports = self._read_ports(2 if staff else 1)
        self.kiosk_port = ports["kiosk API"]
        self.staff_port = ports.get("dashboard", 0)
        if staff:
            self._wait_for_dashboard(data_dir / "server-ca.pem")

    def _read_ports(self, count: int) -> dict[str, int]:
        """The ports ``serve`` prints: the kiosk API's first, then the dashboard's."""
        assert self.process.stdout is not None
        ports: dict[str, int] = {}
        deadline = time.monotonic() + 30
        while len(ports) < count and time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            found = re.search(r"(kiosk API|dashboard)\s+https://[^:]+:(\d+)", line)
            if found:
                ports[found.group(1)] = int(found.group(2))
        if len(ports) >= count:
            return ports
        self.stop()
        stderr = self.process.stderr.read() if self.process.stderr else ""
        raise RuntimeError(f"the bench server did not start: {stderr[-2000:]}")

    def _wait_for_dashboard(self, server_ca: Path) -> None:
        """The dashboard's process starts after the ports are printed: wait until it answers."""
        import ssl

        import httpx

        context = ssl.create_default_context(cafile=str(server_ca))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with httpx.Client(verify=context, timeout=5) as client:
                    if client.get(f"https://127.0.0.1:{self.staff_port}/login").status_code == 200:
                        return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("the bench server's dashboard did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@dataclass(frozen=True)
class _WorkerJob:
    base_urls: tuple[str, ...]  # the server of each device
    server_ca: str
    devices: tuple[str, ...]  # certificate paths; the key is NAME.key.pem beside it
    card_key_pem: bytes
    card_cert_der: bytes
    start_at: float
    seconds: float


def _worker(job: _WorkerJob) -> tuple[list[float], int]:
    """One client process: a thread per kiosk; the latencies (s) and the error count."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    from contract.challenge import signed_message
    from contract.device_signing import DeviceIdentity
    from kiosk.clinic_client import ClinicClient, make_http_client
    from kiosk.errors import KioskError

    card_key = serialization.load_pem_private_key(job.card_key_pem, None)
    assert isinstance(card_key, rsa.RSAPrivateKey)
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def kiosk(cert_path: str, base_url: str) -> None:
        nonlocal errors
        cert = Path(cert_path)
        key = cert.with_name(cert.name.removesuffix(".pem") + ".key.pem")
        identity = DeviceIdentity.load(cert, key)
        http = make_http_client(
            base_url,
            ca_file=Path(job.server_ca),
            identity=identity,
            client_cert_file=cert,
            client_key_file=key,
        )
        mine: list[float] = []
        failed = 0
        with ClinicClient(http, retries=0) as client:

            def one() -> bool:
                challenge = client.challenge()
                signature = card_key.sign(
                    signed_message(challenge.nonce, identity.device_id, "pin"),
                    padding.PKCS1v15(),
                    hashes.SHA256(),
                )
                result = client.verify(challenge.nonce, "pin", job.card_cert_der, signature)
                return result.eligible

            for _ in range(WARMUP_VERIFICATIONS):
                one()
            time.sleep(max(0.0, job.start_at - time.time()))
            end = job.start_at + job.seconds
            # at least one measured verification per kiosk, even when a loaded machine made
            # the warm-up run past the end
            while not (mine or failed) or time.time() < end:
                began = time.perf_counter()
                try:
                    ok = one()
                except KioskError:
                    ok = False
                if ok:
                    mine.append(time.perf_counter() - began)
                else:
                    failed += 1
        with lock:
            latencies.extend(mine)
            errors += failed

    threads = [
        threading.Thread(target=kiosk, args=(d, u))
        for d, u in zip(job.devices, job.base_urls, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors


def _ready(_: int) -> int:
    """Run in each client process before the clock starts: spawned, and its imports done;
    the process id (its CPU time is the kiosks' share)."""
    import cryptography.hazmat.primitives.asymmetric.rsa  # noqa: F401

    import kiosk.clinic_client  # noqa: F401

    time.sleep(0.2)  # long enough that each process takes one
    return os.getpid()


class _CpuWindow:
    """Snapshots of each party's CPU time at the start and the end of the measured window.

    The processes are listed again at each snapshot: a database connection opened during the
    window brings a new PostgreSQL process, all of whose time falls in the window."""

    def __init__(
        self, parties: Callable[[], dict[str, list[int]]] | None, start_at: float, seconds: float
    ) -> None:
        self._parties = parties
        self._snapshots: list[cpu_share.CpuSnapshot] = []
        self._thread = threading.Thread(
            target=self._run, args=(start_at, seconds), name="bench-cpu", daemon=True
        )
        if parties is not None and cpu_share.available():
            self._thread.start()

    def _run(self, start_at: float, seconds: float) -> None:
        assert self._parties is not None
        for moment in (start_at, start_at + seconds):
            time.sleep(max(0.0, moment - time.time()))
            self._snapshots.append(cpu_share.snapshot(self._parties()))

    def figures(self, verifications: int) -> dict[str, float]:
        if self._thread.ident is None:
            return {}
        self._thread.join()
        before, after = self._snapshots
        return cpu_share.share(before, after, verifications)


def _measure(
    pool: concurrent.futures.Executor,
    setup: _Setup,
    base_urls: list[str],
    *,
    kiosks: int,
    seconds: float,
    processes: int,
    parties: Callable[[], dict[str, list[int]]] | None,
) -> BenchResult:
    devices = sorted(str(p) for p in (setup.root / "devices").glob("bench-*[0-9].pem"))[:kiosks]
    served_by = {d: base_urls[i % len(base_urls)] for i, d in enumerate(devices)}
    groups = [tuple(devices[i::processes]) for i in range(processes)]
    start_at = time.time() + START_DELAY_S + 0.05 * kiosks
    jobs = [
        _WorkerJob(
            tuple(served_by[d] for d in group),
            str(setup.data_dir / "server-ca.pem"),
            group,
            setup.card_key_pem,
            setup.card_cert_der,
            start_at,
            seconds,
        )
        for group in groups
        if group
    ]
    window = _CpuWindow(parties, start_at, seconds)
    latencies: list[float] = []
    errors = 0
    for found, failed in pool.map(_worker, jobs):
        latencies.extend(found)
        errors += failed
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    return BenchResult(
        kiosks=kiosks,
        instances=len(base_urls),
        seconds=seconds,
        verifications=len(latencies),
        errors=errors,
        per_second=round(len(latencies) / seconds, 1),
        p50_ms=round(percentile(ms, 50), 2),
        p90_ms=round(percentile(ms, 90), 2),
        p99_ms=round(percentile(ms, 99), 2),
        max_ms=round(ms[-1], 2) if ms else 0.0,
        cpu=window.figures(len(latencies)),
    )


def _parties(
    servers: list[_ServerProcess], kiosk_pids: list[int], database: str | None
) -> Callable[[], dict[str, list[int]]]:
    """The processes of each party, listed when called: each server with its dashboard
    process, the database server (PostgreSQL's processes; SQLite runs inside the server),
    the kiosks' processes."""

    def now() -> dict[str, list[int]]:
        server_pids = [s.process.pid for s in servers]
        for pid in list(server_pids):
            server_pids += cpu_share.children_of(pid)
        parties = {"server": server_pids, "kiosks": kiosk_pids}
        if database:
            parties["database"] = cpu_share.postgres_pids()
        return parties

    return now


def run_bench(
    *,
    kiosks: list[int],
    seconds: float = 5.0,
    database: str | None = None,
    instances: int = 1,
) -> list[BenchResult]:
    if not kiosks or any(k < 1 or k > 256 for k in kiosks):
        raise ValueError("kiosk counts are 1-256")
    if not 0.5 <= seconds <= 300:
        raise ValueError("seconds per run: 0.5-300")
    if not 1 <= instances <= 8:
        raise ValueError("instances: 1-8")
    results: list[BenchResult] = []
    with tempfile.TemporaryDirectory(prefix="clinic-bench-") as tmp:
        setup = _prepare(Path(tmp), max(kiosks), database)
        servers: list[_ServerProcess] = []
        try:
            for _ in range(instances):
                servers.append(_ServerProcess(setup.data_dir, database))
            base_urls = [f"https://127.0.0.1:{s.kiosk_port}" for s in servers]
            processes = 2
            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(processes, mp_context=context) as pool:
                # no process start in the window
                kiosk_pids = sorted(set(pool.map(_ready, range(processes))))
                parties = _parties(servers, kiosk_pids, database)
                for count in kiosks:
                    results.append(
                        _measure(
                            pool,
                            setup,
                            base_urls,
                            kiosks=count,
                            seconds=seconds,
                            processes=min(processes, count),
                            parties=parties,
                        )
                    )
        finally:
            for server in servers:
                server.stop()
    return results


def print_table(results: list[BenchResult]) -> None:
    cpu = os.cpu_count() or 0
    print(f"clinic server bench: loopback, TLS + device signatures, {cpu} CPU(s)")
    print(
        f"{'inst':>4} {'kiosks':>7} {'verif/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}"
        f" {'max ms':>8} {'errors':>7}"
    )
    for r in results:
        print(
            f"{r.instances:>4} {r.kiosks:>7} {r.per_second:>9.1f} {r.p50_ms:>8.2f} {r.p90_ms:>8.2f}"
            f" {r.p99_ms:>8.2f} {r.max_ms:>8.2f} {r.errors:>7}"
        )
    if any(r.cpu for r in results):
        print(f"CPU ms per verification (all {cpu} CPU(s) shared), and how busy the machine was")
        print(
            f"{'inst':>4} {'kiosks':>7} {'server':>8} {'database':>9} {'kiosks':>8} {'busy %':>7}"
        )
        for r in results:
            database = f"{r.cpu['database_ms']:>9.2f}" if "database_ms" in r.cpu else f"{'(in)':>9}"
            print(
                f"{r.instances:>4} {r.kiosks:>7} {r.cpu.get('server_ms', 0):>8.2f} {database}"
                f" {r.cpu.get('kiosks_ms', 0):>8.2f} {r.cpu.get('machine_busy_pct', 0):>7.1f}"
            )


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers ``bench`` under ``clinic-server``."""
    bench = subparsers.add_parser("bench", help="verifications per second on loopback over TLS")
    bench.add_argument("--json", action="store_true", help="the figures as JSON")
    bench.add_argument(
        "--seconds", type=float, default=5.0, metavar="S", help="per kiosk count (default 5)"
    )
    bench.add_argument(
        "--kiosks",
        default="1,8,32",
        metavar="N,N,...",
        help="how many kiosks at once, one run each (default 1,8,32)",
    )
    bench.add_argument(
        "--instances",
        type=int,
        default=1,
        metavar="N",
        help="servers on the one database, the kiosks spread over them (default 1)",
    )
    bench.add_argument(
        "--login-flood",
        action="store_true",
        help="instead: one kiosk's latency quiet and during a password-guessing flood",
    )
    bench.add_argument(
        "--rounds", type=int, default=2, metavar="N", help="login-flood rounds, 1-10 (default 2)"
    )
    bench.add_argument(
        "--receipt-files",
        action="store_true",
        help="instead: the time to build and write one result file for receipt software",
    )
    bench.add_argument(
        "--files", type=int, default=200, metavar="N", help="result files per encoding"
    )
    bench.add_argument(
        "--folder", type=Path, default=None, help="where to write them (default: a temp folder)"
    )
    bench.set_defaults(func=run_clinic_bench)


def run_clinic_bench(args: argparse.Namespace) -> int:
    if args.receipt_files:
        from testbed.bench.receipt_files import run_receipt_files_bench

        return run_receipt_files_bench(args.files, args.folder, args.json)
    if args.login_flood:
        from testbed.bench.login_flood import print_rounds, run_login_flood

        rounds = run_login_flood(seconds=args.seconds, rounds=args.rounds, database=args.database)
        if args.json:
            print(json.dumps([r.as_dict() for r in rounds], indent=1))
        else:
            print_rounds(rounds, "PostgreSQL" if args.database else "SQLite")
        return 0
    kiosks = [int(k) for k in args.kiosks.split(",") if k.strip()]
    results = run_bench(
        kiosks=kiosks, seconds=args.seconds, database=args.database, instances=args.instances
    )
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=1))
    else:
        print_table(results)
    return 0
