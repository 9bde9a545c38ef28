"""``kiosk bench outbox``: durable append latency and the drain rate to a real clinic server.

1. Append latency: ``Outbox.append`` one record at a time (sealed, committed, fsynced) into a
   fresh outbox in a temporary folder on the disk (``--dir``, default the system's temporary
   folder), timed per call: p50, p99 and max in milliseconds.
2. Drain rate: a clinic server (``clinic.server``: uvicorn, mutual TLS, device-signed
   requests, the ``clinic.ingest`` endpoint decrypting and storing) runs on 127.0.0.1 in a
   subprocess; the uploader sends the queued records until none is left; records per second.

Both run for each KEM (``mlkem768-x25519`` and ``x25519``); the server's outbox key is made
for each. This needs the ``clinic`` extra. Nothing leaves the machine.

``LocalClinic`` (a clinic server in a subprocess, with devices issued) is also what the outbox
tests use.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PASSWORD = "local-bench-password"  # noqa: S105 - a throwaway server on loopback


@dataclass(frozen=True)
class KioskFiles:
    """What a provisioned kiosk holds for talking to the local clinic server."""

    device_id: str
    certificate: Path
    key: Path
    server_ca: Path
    outbox_public_key: Path


def prepare_clinic(
    root: Path, devices: Sequence[str], kem: str, *, population: Any = None
) -> dict[str, KioskFiles]:
    """A clinic data directory with its outbox key and the devices issued (no server yet).

    With a ``population`` (:class:`kiosk.sim.population.Population`) the server trusts its
    JPKI CA and CRL and the simulated national system holds its insured people.
    """
    from cryptography import x509

    from clinic.cli import initialise
    from clinic.config import config_from
    from clinic.devices import DeviceRegistry
    from clinic.ingest import create_outbox_key, outbox_key_paths
    from clinic.national import load_insured, read_insured_jsonl
    from clinic.pki import CertificateAuthority, cert_pem, write_private
    from clinic.server import open_database

    data = root / "clinic"
    trust: dict[str, Any] = {}
    if population is not None:
        trust = {
            "jpki_ca": [str(population.ca_directory / "jpki-ca.pem")],
            "jpki_crl": [str(population.crl_path)],
        }
    initialise(data, admin="admin", password=PASSWORD, **trust)
    private, public = outbox_key_paths(data)
    private.unlink()
    create_outbox_key(data, kem)
    config = config_from(data, {})
    db = open_database(config)
    files: dict[str, KioskFiles] = {}
    try:
        if population is not None:
            load_insured(db, read_insured_jsonl(population.insured_path), now=time.time())
        ca_cert = x509.load_pem_x509_certificate(config.paths.device_ca.read_bytes())
        registry = DeviceRegistry(db, ca_cert, clock=time.time)
        ca = CertificateAuthority.load(config.paths.device_ca, config.paths.device_ca_key)
        for name in devices:
            issued = registry.issue(ca, name)
            cert, key = root / f"{name}.pem", root / f"{name}.key.pem"
            write_private(key, issued.key_pem)
            cert.write_bytes(cert_pem(issued.certificate))
            files[name] = KioskFiles(name, cert, key, config.paths.server_ca, public)
    finally:
        db.close()
    return files


def serve(data_dir: Path, kiosk_port: int = 0, staff_port: int = 0) -> None:
    """Run the clinic server on 127.0.0.1 (free ports unless given); print the kiosk port;
    until SIGTERM. The JPKI trust is the data directory's (none unless it names a CA)."""
    import asyncio
    import logging
    from dataclasses import replace

    from clinic.config import config_from
    from clinic.jpki import JpkiTrust
    from clinic.server import ClinicServer, build_context, new_event_loop

    logging.basicConfig(level=logging.WARNING)
    config = replace(
        config_from(data_dir, {}),
        kiosk_port=kiosk_port,
        staff_port=staff_port,
        log_level="warning",
    )
    context = build_context(config, trust=None if config.jpki_ca_files else JpkiTrust([]))
    server = ClinicServer(config, context)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, server.stop)
        task = asyncio.create_task(server.serve())
        while not server.started.is_set() and not task.done():
            await asyncio.sleep(0.02)
        print(f"port {server.kiosk_port} {server.staff_port}", flush=True)
        await task

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main())


class LocalClinic:
    """A real clinic server (TLS, mTLS, ingest) in a subprocess on 127.0.0.1."""

    def __init__(
        self,
        root: Path,
        devices: Sequence[str],
        *,
        kem: str = "mlkem768-x25519",
        population: Any = None,
    ):
        self.root = root
        self.kiosks = prepare_clinic(root, devices, kem, population=population)
        self.data_dir = root / "clinic"
        self.port = 0
        self.staff_port = 0
        self._process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def staff_url(self) -> str:
        return f"https://127.0.0.1:{self.staff_port}"

    def start(self, timeout_s: float = 30.0) -> LocalClinic:
        """Start the server; after a :meth:`stop` it comes back on the same ports."""
        ports = [str(self.port), str(self.staff_port)] if self.port else []
        self._process = subprocess.Popen(
            [sys.executable, "-m", "kiosk.bench.outbox", "serve", str(self.data_dir), *ports],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self._process.stdout is not None
        line = ""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self._process.stdout.readline()
            if line.startswith("port ") or not line:
                break
        if not line.startswith("port "):
            self.stop()
            raise RuntimeError("the local clinic server did not start")
        self.port, self.staff_port = (int(p) for p in line.split()[1:3])
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> LocalClinic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def http_client(self, device_id: str, **kwargs: Any) -> Any:
        from kiosk.clinic_client import make_http_client
        from kiosk.device_auth import DeviceIdentity

        files = self.kiosks[device_id]
        return make_http_client(
            self.url,
            ca_file=files.server_ca,
            identity=DeviceIdentity.load(files.certificate, files.key),
            client_cert_file=files.certificate,
            client_key_file=files.key,
            **kwargs,
        )

    @contextlib.contextmanager
    def ingest(self) -> Iterator[Any]:
        """The server's ingest store, opened on its database (the server may run)."""
        from clinic.ingest import Ingest
        from clinic.storage import Database

        db = Database.open(str(self.data_dir / "clinic.db"), pool_size=1)
        try:
            yield Ingest(db, None, clock=time.time)
        finally:
            db.close()


# --- the benchmark ---------------------------------------------------------------------------


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(kem: str, *, appends: int, drain: int, folder: Path) -> dict[str, Any]:
    from kiosk.outbox.sealing import OutboxPublicKey
    from kiosk.outbox.store import Outbox
    from kiosk.outbox.uploader import HttpBatchSender, Uploader, UploadPolicy

    root = Path(tempfile.mkdtemp(prefix=f"bench-outbox-{kem}-", dir=folder))
    try:
        clinic = LocalClinic(root, ["bench-kiosk"], kem=kem)
        public = OutboxPublicKey.load(clinic.kiosks["bench-kiosk"].outbox_public_key)
        payload = {
            "from": "card_present",
            "to": "pin_entry",
            "reason": "card.jpki_ok",
            "tries_left": 3,
            "ms": 812,
        }
        with Outbox(root / "append.db", device_id="bench-kiosk", public_key=public) as outbox:
            times = []
            for _ in range(appends):
                start = time.perf_counter()
                outbox.append("flow.transition", payload)
                times.append((time.perf_counter() - start) * 1000)
            sealed_len = len(outbox.pending(max_records=1, max_bytes=1 << 20)[0].sealed)
        with Outbox(root / "drain.db", device_id="bench-kiosk", public_key=public) as outbox:
            for _ in range(drain // 500):
                outbox.append_many([("flow.transition", payload)] * 500)
            queued = outbox.status().records
            with clinic, clinic.http_client("bench-kiosk") as client:
                uploader = Uploader(
                    outbox,
                    HttpBatchSender(client),
                    UploadPolicy(batch_max_age_s=0, backoff_base_s=0.05, backoff_cap_s=1.0),
                )
                start = time.perf_counter()
                uploader.run(threading.Event(), until_empty=True)
                seconds = time.perf_counter() - start
                batches = uploader.state.sent_batches
            left = outbox.status().records
        with clinic.ingest() as ingest:
            stored = ingest.kiosks()["bench-kiosk"].records
    finally:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    return {
        "kem": kem,
        "sealed_bytes_per_record": sealed_len,
        "append_ms": {
            "n": appends,
            "p50": round(statistics.median(times), 3),
            "p99": round(_percentile(times, 0.99), 3),
            "max": round(max(times), 3),
        },
        "drain": {
            "records": queued,
            "stored_at_server": stored,
            "left_on_kiosk": left,
            "batches": batches,
            "seconds": round(seconds, 3),
        },
        "drain_per_second": round(queued / seconds, 1),
    }


def run(*, appends: int, drain: int, kems: Sequence[str], folder: Path) -> dict[str, Any]:
    results = [measure(kem, appends=appends, drain=drain, folder=folder) for kem in kems]
    chosen = results[0]
    return {
        "kem": chosen["kem"],
        "append_ms": chosen["append_ms"],
        "drain_per_second": chosen["drain_per_second"],
        "targets": {"append_ms_p99_below": 5.0, "drain_per_second_above": 2000},
        "by_kem": results,
    }


def to_text(figures: dict[str, Any]) -> str:
    lines = []
    for r in figures["by_kem"]:
        a, d = r["append_ms"], r["drain"]
        lines.append(
            f"{r['kem']:16} append p50 {a['p50']:.3f} ms  p99 {a['p99']:.3f} ms"
            f"  max {a['max']:.3f} ms  ({r['sealed_bytes_per_record']} B sealed)"
        )
        lines.append(
            f"{'':16} drain {r['drain_per_second']:.0f} records/s"
            f" ({d['records']} in {d['seconds']} s, {d['batches']} batches,"
            f" {d['stored_at_server']} stored, {d['left_on_kiosk']} left)"
        )
    return "\n".join(lines)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers ``outbox`` under ``kiosk bench``."""
    outbox = subparsers.add_parser(
        "outbox", help="durable append latency and drain rate to a local clinic server (TLS)"
    )
    outbox.add_argument("--json", action="store_true", help="print JSON")
    outbox.add_argument("--appends", type=int, default=2000, help="timed appends (2000)")
    outbox.add_argument("--drain", type=int, default=10000, help="records drained (10000)")
    outbox.add_argument(
        "--kem",
        action="append",
        choices=["mlkem768-x25519", "x25519"],
        help="measure only this KEM (repeatable; default both, hybrid first)",
    )
    outbox.add_argument(
        "--dir", type=Path, default=Path(tempfile.gettempdir()), help="where the files go"
    )
    outbox.set_defaults(handler=run_outbox)


def run_outbox(args: argparse.Namespace) -> int:
    figures = run(
        appends=args.appends,
        drain=max(500, args.drain),
        kems=args.kem or ["mlkem768-x25519", "x25519"],
        folder=args.dir,
    )
    print(json.dumps(figures, indent=2) if args.json else to_text(figures))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(Path(sys.argv[2]))
    elif len(sys.argv) == 5 and sys.argv[1] == "serve":
        serve(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    else:
        print(
            "usage: python -m kiosk.bench.outbox serve DATA_DIR [KIOSK_PORT STAFF_PORT]",
            file=sys.stderr,
        )
        sys.exit(2)
