"""``kiosk bench startup``: from starting ``kiosk run`` to READY, with the demo's configuration.

The demo's world (``testbed.environment``: a population of virtual cards, a clinic server on
127.0.0.1 over mutual TLS, the kiosk's TOML file with mock pins, no voice and SDL's dummy
video driver) is set up once; then ``kiosk run`` is started N times as systemd starts it, in
a fresh process under a notify socket this benchmark binds (``NOTIFY_SOCKET``). The time
counted is from just before the process is spawned to the ``READY=1`` datagram, which the
kiosk sends once its idle screen is drawn (:func:`kiosk.app.serve`). Each run is then stopped
with SIGTERM, and the time to exit is reported too.

For scale, the same is given for ``kiosk --version`` (the interpreter and the command line
alone). Needs pcscd with the vpcd reader (the kiosk watches the reader from its start).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from testbed.bench.transaction import _notify_socket, _wait_for_message


def _summary(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {
        "median_ms": round(statistics.median(ms), 1),
        "min_ms": round(min(ms), 1),
        "max_ms": round(max(ms), 1),
    }


def _one_start(config: Path, folder: Path) -> tuple[float, float]:
    """Seconds to READY=1 and seconds from SIGTERM to exit, of one ``kiosk run``."""
    with _notify_socket(folder) as (sock, address):
        environ = {
            **os.environ,
            "NOTIFY_SOCKET": address,
            "SDL_VIDEODRIVER": "dummy",
            "SDL_AUDIODRIVER": "dummy",
        }
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "kiosk", "run", "--config", str(config)],
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            if not _wait_for_message(sock, "READY=1", 60):
                raise RuntimeError("the kiosk process did not become ready within 60 s")
            ready = time.perf_counter() - started
            stopping = time.perf_counter()
            process.send_signal(signal.SIGTERM)
            process.wait(30)
            stopped = time.perf_counter() - stopping
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
    (folder / "notify.sock").unlink(missing_ok=True)
    return ready, stopped


def run(*, runs: int, say: Any = None) -> dict[str, Any]:
    from testbed.environment import environment

    say = say or (lambda text: None)
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as work:
        root = Path(work)
        say("setting up the demo's clinic server and kiosk configuration...")
        with environment(root / "world", count=4) as env:
            baseline = []
            for _ in range(runs):
                started = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-m", "kiosk", "--version"], capture_output=True, check=True
                )
                baseline.append(time.perf_counter() - started)
            ready, stop = [], []
            for n in range(runs):
                say(f"start {n + 1} of {runs}")
                to_ready, to_exit = _one_start(env.config_path, root)
                ready.append(to_ready)
                stop.append(to_exit)
    return {
        "runs": runs,
        "start_to_ready": _summary(ready),
        "sigterm_to_exit": _summary(stop),
        "kiosk_version": _summary(baseline),
    }


def to_text(figures: dict[str, Any]) -> str:
    def line(label: str, row: dict[str, float]) -> str:
        return (
            f"  {label:<34} median {row['median_ms']:8.1f} ms   min {row['min_ms']:8.1f} ms"
            f"   max {row['max_ms']:8.1f} ms"
        )

    return "\n".join(
        [
            f"kiosk run with the demo's configuration, {figures['runs']} starts",
            line("spawn to READY=1", figures["start_to_ready"]),
            line("SIGTERM to exit", figures["sigterm_to_exit"]),
            line("kiosk --version (interpreter, CLI)", figures["kiosk_version"]),
        ]
    )


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers ``startup`` under ``kiosk bench``."""
    startup = subparsers.add_parser(
        "startup", help="time from starting `kiosk run` (demo configuration) to READY"
    )
    startup.add_argument("--json", action="store_true", help="print JSON")
    startup.add_argument("--runs", type=int, default=5, help="starts (default 5)")
    startup.set_defaults(handler=run_startup)


def run_startup(args: argparse.Namespace) -> int:
    say = None if args.json else (lambda text: print(text, file=sys.stderr, flush=True))
    figures = run(runs=max(1, args.runs), say=say)
    print(json.dumps(figures, indent=2) if args.json else to_text(figures))
    return 0
