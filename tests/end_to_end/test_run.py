"""``kiosk run`` as systemd runs it: READY=1 once the screen is up, WATCHDOG=1 while the flow
loop answers, STOPPING=1 and exit code 0 on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from testbed.environment import Environment, write_kiosk_config
from tests.support.kiosk_under_test import E2E_TIMEOUTS


def messages(sock: socket.socket, until: str, timeout_s: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            seen += sock.recv(4096).decode().splitlines()
        except TimeoutError:
            break
        if until in seen:
            break
    return seen


def test_kiosk_run_notifies_systemd_and_stops_cleanly(env: Environment, tmp_path: Path) -> None:
    # a reader nobody has: this kiosk never competes with the session kiosk for the card
    config = write_kiosk_config(
        tmp_path / "kiosk.toml",
        device=env.device,
        server_url=env.clinic.url,
        outbox=tmp_path / "outbox.db",
        reader="No Such Reader 00 00",
        timeouts=E2E_TIMEOUTS,
        fullscreen=True,
    )
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        process = subprocess.Popen(
            [sys.executable, "-m", "kiosk", "run", "--config", str(config)],
            env={
                **os.environ,
                "NOTIFY_SOCKET": address,
                "WATCHDOG_USEC": "2000000",
                "SDL_VIDEODRIVER": "dummy",
                "SDL_AUDIODRIVER": "dummy",
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            started = messages(sock, "READY=1", 60)
            assert "READY=1" in started, process.stderr
            pings = messages(sock, "never", 2.5)
            assert pings.count("WATCHDOG=1") >= 2, pings
            process.send_signal(signal.SIGTERM)
            assert "STOPPING=1" in messages(sock, "STOPPING=1", 15)
            assert process.wait(20) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
            assert process.stderr is not None
            log = process.stderr.read()
            process.stderr.close()
    assert "Traceback" not in log
