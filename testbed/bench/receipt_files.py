"""``clinic-server bench --receipt-files``: the time to build one result file and to write it
whole (temporary name, fsync, rename, folder fsync), in both encodings, from the records of a
generated population."""

from __future__ import annotations

import datetime as dt
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from clinic.receipt_files.document import CompletedCheck, build
from clinic.receipt_files.folder import write_atomically
from clinic.receipt_files.settings import Encoding


@dataclass(frozen=True)
class FileFigures:
    encoding: str
    files: int
    mean_bytes: float
    build_p50_ms: float
    build_p90_ms: float
    write_p50_ms: float
    write_p90_ms: float
    write_max_ms: float


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _checks(count: int) -> list[CompletedCheck]:
    from kiosk.sim.population import generate_population

    with tempfile.TemporaryDirectory(prefix="onshi-bench-pop-") as root:
        population = generate_population(Path(root) / "population", 20, seed=7)
        lines = population.insured_path.read_text(encoding="utf-8").splitlines()
    entries: list[dict[str, Any]] = [json.loads(line) for line in lines if line.strip()]
    now = dt.datetime.now(ZoneInfo("Asia/Tokyo"))
    return [
        CompletedCheck(
            f"{i:032x}",
            now,
            int(entries[i % len(entries)]["validity_code"]),
            entries[i % len(entries)]["records"],
        )
        for i in range(count)
    ]


def measure(folder: Path, count: int) -> list[FileFigures]:
    checks = _checks(count)
    figures = []
    encodings: tuple[Encoding, ...] = ("cp932", "utf-8")
    for enc in encodings:
        encoding = str(enc)
        builds, writes, sizes = [], [], []
        target = folder / encoding
        target.mkdir(parents=True, exist_ok=True)
        for check in checks:
            start = time.perf_counter()
            result = build(check, "1310000001", enc)
            built = time.perf_counter()
            write_atomically(target, result.name, result.content)
            done = time.perf_counter()
            builds.append((built - start) * 1000)
            writes.append((done - start) * 1000)
            sizes.append(len(result.content))
        figures.append(
            FileFigures(
                encoding,
                count,
                statistics.fmean(sizes),
                _percentile(builds, 0.5),
                _percentile(builds, 0.9),
                _percentile(writes, 0.5),
                _percentile(writes, 0.9),
                max(writes),
            )
        )
    return figures


def run_receipt_files_bench(count: int, folder: Path | None, as_json: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="onshi-bench-oqs-", dir=folder) as where:
        figures = measure(Path(where), count)
        if as_json:
            print(json.dumps([asdict(f) for f in figures], indent=1))
            return 0
        print(f"result files: {count} per encoding, written to {where} (fsync + rename)")
        print(
            f"{'encoding':>8} {'bytes':>7} {'build p50':>10} {'build p90':>10}"
            f" {'build+write p50':>16} {'p90':>8} {'max':>8}  (ms)"
        )
        for f in figures:
            print(
                f"{f.encoding:>8} {f.mean_bytes:>7.0f} {f.build_p50_ms:>10.3f}"
                f" {f.build_p90_ms:>10.3f} {f.write_p50_ms:>16.3f} {f.write_p90_ms:>8.3f}"
                f" {f.write_max_ms:>8.3f}"
            )
    return 0
