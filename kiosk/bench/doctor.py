"""``kiosk bench doctor``: how long ``kiosk doctor`` takes, median and max over N runs.

Two figures, against the configuration given (a kiosk's own, or the demo's):

1. the whole command as a maintainer runs it: ``kiosk doctor --json`` in a fresh Python
   process each time (interpreter start and imports included);
2. each check in this process (``run_checks`` with its timings), so a slow check shows.

Nothing is timed in a test; this prints figures only. Like the doctor it spends no PIN try.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _summary(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {
        "median_ms": round(statistics.median(ms), 1),
        "max_ms": round(max(ms), 1),
    }


def run(config_path: Path, *, runs: int) -> dict[str, Any]:
    from kiosk.config import load_config
    from kiosk.doctor.run import Timings, run_checks

    command = [sys.executable, "-m", "kiosk.cli", "doctor", "--json", "--config", str(config_path)]
    process_times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=False)
        process_times.append(time.perf_counter() - started)
    config = load_config(config_path)
    timings: Timings = {}
    totals = []
    states: dict[str, str] = {}
    for _ in range(runs):
        started = time.perf_counter()
        findings = run_checks(config, timings=timings)
        totals.append(time.perf_counter() - started)
        states = {f.name: f.state.value for f in findings}
    return {
        "runs": runs,
        "config": str(config_path),
        "command": _summary(process_times),
        "checks_in_process": _summary(totals),
        "per_check": {
            name: {**_summary(values), "state": states.get(name, "-")}
            for name, values in timings.items()
        },
    }


def to_text(figures: dict[str, Any]) -> str:
    lines = [
        f"kiosk doctor, {figures['runs']} runs, {figures['config']}",
        f"  whole command (fresh process)  median {figures['command']['median_ms']:8.1f} ms"
        f"   max {figures['command']['max_ms']:8.1f} ms",
        f"  all checks in process          median "
        f"{figures['checks_in_process']['median_ms']:8.1f} ms"
        f"   max {figures['checks_in_process']['max_ms']:8.1f} ms",
    ]
    for name, row in figures["per_check"].items():
        lines.append(
            f"    {name:<28} median {row['median_ms']:8.1f} ms   max {row['max_ms']:8.1f} ms"
            f"   ({row['state']})"
        )
    return "\n".join(lines)
