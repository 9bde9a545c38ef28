"""``kiosk bench outbox``: durable append latency and the drain rate to a real clinic server.

1. Append latency: ``Outbox.append`` one record at a time (sealed, committed, fsynced) into a
   fresh outbox in a temporary folder on the disk (``--dir``, default the system's temporary
   folder), timed per call: p50, p99 and max in milliseconds.
2. Drain rate: a clinic server (``clinic.server``: uvicorn, mutual TLS, device-signed
   requests, the ``clinic.ingest`` endpoint decrypting and storing) runs on 127.0.0.1 in a
   subprocess; the uploader sends the queued records until none is left; records per second.

Both run for each KEM (``mlkem768-x25519`` and ``x25519``); the server's outbox key is made
for each. This needs the ``clinic`` extra. Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from testbed.local_clinic import LocalClinic

# --- the benchmark ---------------------------------------------------------------------------


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(kem: str, *, appends: int, drain: int, folder: Path) -> dict[str, Any]:
    from contract.sealing import OutboxPublicKey
    from kiosk.clinic_client import ClinicClient
    from kiosk.outbox.queue import Outbox
    from kiosk.outbox.uploader import Uploader, UploadPolicy

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
            with clinic, ClinicClient(clinic.http_client("bench-kiosk"), retries=0) as client:
                uploader = Uploader(
                    outbox,
                    client,
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
