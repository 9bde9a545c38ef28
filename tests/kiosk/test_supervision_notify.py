"""The notify protocol, read from our own datagram socket exactly as systemd reads it."""

from __future__ import annotations

import itertools
import os
import secrets
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.supervision import Notifier, Watchdog


class FakeSystemd:
    """A bound AF_UNIX datagram socket with SO_PASSCRED, like the manager's notify socket."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(address)
        self.sock.settimeout(5)

    def receive(self, timeout_s: float = 5) -> tuple[list[str], int]:
        """One message's ``KEY=VALUE`` lines, and the sender's pid from its credentials."""
        self.sock.settimeout(timeout_s)
        data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = -1
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid, _uid, _gid = struct.unpack("iii", payload[:12])
        return data.decode("utf-8").split("\n"), pid

    def nothing_within(self, seconds: float) -> bool:
        self.sock.settimeout(seconds)
        try:
            self.sock.recv(4096)
        except TimeoutError:
            return True
        return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def path_socket() -> Iterator[tuple[FakeSystemd, str]]:
    # a short folder: unix socket paths are limited to 107 bytes
    with tempfile.TemporaryDirectory(prefix="notify-", dir="/tmp") as folder:
        address = str(Path(folder) / "notify")
        systemd = FakeSystemd(address)
        yield systemd, address
        systemd.close()


@pytest.fixture
def abstract_socket() -> Iterator[tuple[FakeSystemd, str]]:
    name = f"onshi-kiosk-test/{secrets.token_hex(8)}"
    systemd = FakeSystemd("\0" + name)
    yield systemd, "@" + name
    systemd.close()


def test_ready_status_watchdog_and_stopping_arrive_as_systemd_reads_them(
    path_socket: tuple[FakeSystemd, str],
) -> None:
    systemd, address = path_socket
    notifier = Notifier.from_env({"NOTIFY_SOCKET": address})
    assert notifier.enabled
    assert notifier.ready("idle screen drawn")
    assert systemd.receive()[0] == ["READY=1", "STATUS=idle screen drawn"]
    assert notifier.status("reader missing\n(K-303)")
    assert systemd.receive()[0] == ["STATUS=reader missing (K-303)"]  # one line, always
    assert notifier.watchdog()
    assert systemd.receive() == (["WATCHDOG=1"], os.getpid())
    assert notifier.stopping()
    assert systemd.receive()[0] == ["STOPPING=1"]


def test_an_abstract_socket_written_with_an_at_sign_is_reached(
    abstract_socket: tuple[FakeSystemd, str],
) -> None:
    systemd, address = abstract_socket
    assert Notifier.from_env({"NOTIFY_SOCKET": address}).ready()
    assert systemd.receive()[0] == ["READY=1"]


def test_without_notify_socket_every_call_does_nothing() -> None:
    notifier = Notifier.from_env({})
    assert not notifier.enabled
    assert notifier.address is None
    assert not notifier.ready("x")
    assert not notifier.watchdog()
    watchdog = Watchdog.from_env(notifier, {"WATCHDOG_USEC": "2000000"})
    assert not watchdog.enabled
    assert watchdog.max_block_s is None
    assert not watchdog.progress()


def test_a_relative_notify_socket_is_refused_like_sd_notify_does(
    caplog: pytest.LogCaptureFixture,
) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": "notify"})
    assert not notifier.enabled
    assert "neither a path nor an abstract name" in caplog.text


def test_a_vanished_socket_is_logged_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert not notifier.ready()
    assert not notifier.watchdog()
    assert caplog.text.count("cannot notify systemd") == 1


def test_a_malformed_assignment_is_a_bug_not_a_message(
    path_socket: tuple[FakeSystemd, str],
) -> None:
    systemd, address = path_socket
    notifier = Notifier(address)
    with pytest.raises(ValueError, match="KEY=VALUE"):
        notifier.send("READY")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        notifier.send("STATUS=a\nWATCHDOG=1")
    assert systemd.nothing_within(0.1)


def test_the_watchdog_pings_every_quarter_timeout_only_when_progress_is_reported(
    path_socket: tuple[FakeSystemd, str],
) -> None:
    systemd, address = path_socket
    now = [100.0]
    watchdog = Watchdog.from_env(
        Notifier(address), {"WATCHDOG_USEC": "20000000"}, clock=lambda: now[0]
    )
    assert (watchdog.timeout_s, watchdog.interval_s, watchdog.max_block_s) == (20.0, 5.0, 5.0)
    pinged = []
    for t in (100.0, 102.0, 104.9, 105.0, 109.0, 110.0, 111.0, 140.0, 141.0):
        now[0] = t
        if watchdog.progress():
            pinged.append(t)
    assert pinged == [100.0, 105.0, 110.0, 140.0]
    for _ in pinged:
        assert systemd.receive()[0] == ["WATCHDOG=1"]
    assert systemd.nothing_within(0.1)


def test_a_loop_twice_as_slow_as_asked_still_pings_well_within_the_timeout(
    path_socket: tuple[FakeSystemd, str],
) -> None:
    systemd, address = path_socket
    now = [0.0]
    watchdog = Watchdog(Notifier(address), 20.0, clock=lambda: now[0])
    assert watchdog.max_block_s is not None
    pings = []
    for step in range(40):
        now[0] = step * 2 * watchdog.max_block_s * 0.99  # every call nearly 2x late
        if watchdog.progress():
            assert systemd.receive()[0] == ["WATCHDOG=1"]
            pings.append(now[0])
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert len(pings) == 40  # each late call is past the quarter: each one pings
    assert max(gaps) <= 0.75 * 20.0


def test_a_systemd_that_does_not_read_never_blocks_the_caller(
    path_socket: tuple[FakeSystemd, str], caplog: pytest.LogCaptureFixture
) -> None:
    _, address = path_socket
    notifier = Notifier(address)
    started = time.monotonic()
    sent = [notifier.status(f"message {n}") for n in range(2000)]  # nobody reads them
    assert time.monotonic() - started < 10
    assert sent[0]
    assert not sent[-1]  # the queue filled up: dropped, not waited for
    assert caplog.text.count("cannot notify systemd") == 1


@pytest.mark.parametrize(
    ("environ", "enabled"),
    [
        ({"WATCHDOG_USEC": "5000000"}, True),
        ({"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": str(os.getpid())}, True),
        ({"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "1"}, False),  # meant for another process
        ({"WATCHDOG_USEC": "0"}, False),
        ({"WATCHDOG_USEC": "soon"}, False),
        ({}, False),
    ],
)
def test_the_watchdog_is_on_only_when_systemd_asked_this_process(
    path_socket: tuple[FakeSystemd, str], environ: dict[str, str], enabled: bool
) -> None:
    _, address = path_socket
    assert Watchdog.from_env(Notifier(address), environ).enabled is enabled


CHILD = textwrap.dedent(
    """
    import time
    from kiosk.supervision import Notifier, Watchdog

    notifier = Notifier.from_env()
    watchdog = Watchdog.from_env(notifier)
    notifier.ready("idle")
    end = time.monotonic() + 1.0
    while time.monotonic() < end:          # a healthy main loop
        time.sleep(watchdog.max_block_s)
        watchdog.progress()
    notifier.status("hung")
    time.sleep(1.0)                        # stuck: no progress, so no pings
    """
)


def test_a_child_process_pings_while_its_loop_runs_and_stops_when_it_hangs(
    path_socket: tuple[FakeSystemd, str],
) -> None:
    systemd, address = path_socket
    env = {**os.environ, "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "400000"}
    child = subprocess.Popen([sys.executable, "-c", CHILD], env=env)
    try:
        messages = []
        while True:
            lines, pid = systemd.receive(timeout_s=10)
            assert pid == child.pid  # what systemd checks for NotifyAccess=main
            messages.append(lines)
            if lines == ["STATUS=hung"]:
                break
        assert child.wait(timeout=10) == 0
    finally:
        child.kill()
        child.wait()
    assert messages[0] == ["READY=1", "STATUS=idle"]
    pings = messages[1:-1]
    assert pings
    assert all(lines == ["WATCHDOG=1"] for lines in pings)
    # 1 s of progress with a ping due every 0.1 s: about 10, at least 3 on a loaded machine
    assert 3 <= len(pings) <= 11
    assert systemd.nothing_within(0.2)  # nothing after the hang
