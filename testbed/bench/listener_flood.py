"""Request heads against ``clinic-server serve``: what huge and slow ones cost the server.

Starts ``clinic-server serve`` on a throw-away clinic (as ``clinic-server bench`` does: its own
CAs, two kiosks, SQLite) on free loopback ports, then, against the staff dashboard's port:

- **huge heads**: N connections each stream a request head of M MiB that never ends; the
  figures are the resident memory of the server's processes (the kiosk API's process and
  the dashboard's) before, at the peak and after the connections close, and how many bytes a
  connection got to send before the server closed it;
- **slow heads**: N connections each send a request head one byte a second; the figure is
  how long the server let them stay;

and meanwhile, every half second, a kiosk request (mutual TLS, signed) and a staff page, whose
slowest answer and failures are counted. Loopback only; every loop is bounded in count and
time and the server is stopped at the end.

    python -m testbed.bench.listener_flood [--connections 50] [--mib 8] [--slow 500] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
CHUNK = 64 * 1024
_HEAD_START = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: "


# --- the server -----------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the fields after the command name, which is in parentheses and may hold spaces
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def rss_mib(pid: int) -> float:
    """Resident memory of one process, MiB (0 when it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else 0.0


@dataclass
class ServedClinic:
    """``clinic-server serve`` in a child process, with one kiosk's files."""

    process: subprocess.Popen[str]
    data_dir: Path
    kiosk_port: int
    staff_port: int
    kiosk_cert: Path
    kiosk_key: Path
    #: a card the clinic's simulated national system knows: its key (PEM) and certificate
    card_key_pem: bytes = b""
    card_cert_der: bytes = b""

    @property
    def server_ca(self) -> Path:
        return self.data_dir / "server-ca.pem"

    def pids(self) -> list[int]:
        """The server's processes: ``serve`` and its children (the dashboard's)."""
        return [self.process.pid, *_children(self.process.pid)]

    def staff_pid(self) -> int | None:
        children = _children(self.process.pid)
        return children[0] if children else None

    def rss_mib(self) -> float:
        return sum(rss_mib(pid) for pid in self.pids())

    def client_context(self, *, kiosk: bool) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.server_ca))
        if kiosk:
            context.load_cert_chain(str(self.kiosk_cert), str(self.kiosk_key))
        return context

    def stop(self) -> None:
        process = self.process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # its own session: serve and its child
                process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def start_served_clinic(root: Path, *, timeout_s: float = 60.0) -> ServedClinic:
    """A throw-away clinic in ``root``, served by ``clinic-server serve`` until ``stop()``."""
    from testbed.bench.clinic import _prepare

    setup = _prepare(root, 2, None)
    command = [
        sys.executable,
        "-m",
        "clinic.cli",
        "--data-dir",
        str(setup.data_dir),
        "serve",
        "--kiosk-port",
        "0",
        "--staff-port",
        "0",
        "--log-level",
        "error",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
    ports: dict[str, int] = {}
    deadline = time.monotonic() + timeout_s
    assert process.stdout is not None
    while len(ports) < 2 and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        found = re.search(r"(kiosk API|dashboard)\s+https://[^:]+:(\d+)", line)
        if found:
            ports[found.group(1)] = int(found.group(2))
    devices = root / "devices"
    served = ServedClinic(
        process,
        setup.data_dir,
        ports.get("kiosk API", 0),
        ports.get("dashboard", 0),
        devices / "bench-000.pem",
        devices / "bench-000.key.pem",
        setup.card_key_pem,
        setup.card_cert_der,
    )
    if len(ports) < 2 or not wait_for_dashboard(served, deadline - time.monotonic()):
        served.stop()
        raise RuntimeError("clinic-server serve did not start")
    return served


def wait_for_dashboard(served: ServedClinic, timeout_s: float) -> bool:
    """True once the dashboard answers (its process starts after the ports are printed)."""
    deadline = time.monotonic() + max(0.0, timeout_s)
    while time.monotonic() < deadline:
        if staff_page(served) is not None:
            return True
        time.sleep(0.2)
    return False


# --- legitimate clients -----------------------------------------------------------------------


def staff_page(served: ServedClinic, timeout_s: float = 10.0) -> float | None:
    """Seconds the login page took, None when it failed."""
    import httpx

    started = time.monotonic()
    try:
        with httpx.Client(
            base_url=f"https://{HOST}:{served.staff_port}",
            verify=served.client_context(kiosk=False),
            timeout=timeout_s,
        ) as client:
            ok = client.get("/login").status_code == 200
    except httpx.HTTPError:
        return None
    return time.monotonic() - started if ok else None


def kiosk_request(served: ServedClinic, timeout_s: float = 10.0) -> float | None:
    """Seconds a signed heartbeat took (a new connection), None when it failed."""
    import httpx

    from contract.device_signing import DeviceIdentity
    from kiosk.clinic_client import ClinicClient, make_http_client
    from kiosk.errors import ServerRejected, ServerUnreachable

    started = time.monotonic()
    http = make_http_client(
        f"https://{HOST}:{served.kiosk_port}",
        ca_file=served.server_ca,
        identity=DeviceIdentity.load(served.kiosk_cert, served.kiosk_key),
        client_cert_file=served.kiosk_cert,
        client_key_file=served.kiosk_key,
        timeout=httpx.Timeout(timeout_s),
    )
    try:
        with ClinicClient(http, retries=0) as client:
            client.heartbeat("ok", {"probe": "listener-flood"})
    except (ServerRejected, ServerUnreachable):
        return None
    return time.monotonic() - started


@dataclass
class ServiceProbe:
    """Kiosk and staff requests every ``interval_s`` while a flood runs (a thread)."""

    served: ServedClinic
    interval_s: float = 0.5
    kiosk_s: list[float] = field(default_factory=list)
    staff_s: list[float] = field(default_factory=list)
    kiosk_failures: int = 0
    staff_failures: int = 0

    @contextlib.contextmanager
    def running(self) -> Iterator[ServiceProbe]:
        done = threading.Event()

        def probe() -> None:
            while not done.is_set():
                kiosk = kiosk_request(self.served)
                staff = staff_page(self.served)
                if kiosk is None:
                    self.kiosk_failures += 1
                else:
                    self.kiosk_s.append(kiosk)
                if staff is None:
                    self.staff_failures += 1
                else:
                    self.staff_s.append(staff)
                done.wait(self.interval_s)

        thread = threading.Thread(target=probe, name="service-probe", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            done.set()
            thread.join(30)

    def figures(self) -> dict[str, Any]:
        return {
            "kiosk_requests": len(self.kiosk_s),
            "kiosk_failures": self.kiosk_failures,
            "kiosk_slowest_s": round(max(self.kiosk_s, default=0.0), 3),
            "staff_requests": len(self.staff_s),
            "staff_failures": self.staff_failures,
            "staff_slowest_s": round(max(self.staff_s, default=0.0), 3),
        }


# --- the floods -------------------------------------------------------------------------------


@dataclass
class HugeHeads:
    connections: int
    mib_each: int
    rss_before_mib: float
    rss_peak_mib: float
    rss_after_mib: float
    #: bytes each connection got to send before the server closed it (or all of them)
    sent_max_bytes: int
    #: connections the server closed before the whole head was sent
    cut_off: int
    service: dict[str, Any]

    @property
    def growth_mib(self) -> float:
        return self.rss_peak_mib - self.rss_before_mib

    @property
    def kept_mib(self) -> float:
        return self.rss_after_mib - self.rss_before_mib


@dataclass
class _Flood:
    """What the huge-head connections share: how many finished sending, when to let go."""

    finished: int = 0
    hold: asyncio.Event = field(default_factory=asyncio.Event)


async def _huge_head(context: ssl.SSLContext, port: int, size: int, flood: _Flood) -> int:
    """Stream a head of ``size`` bytes that never ends; bytes sent before the server closed."""
    sent = 0
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(HOST, port, ssl=context), 10
        )
    except (OSError, TimeoutError):
        flood.finished += 1
        return 0
    try:
        writer.write(_HEAD_START)
        chunk = b"a" * CHUNK
        while sent < size and not writer.is_closing() and not reader.at_eof():
            writer.write(chunk)
            await asyncio.wait_for(writer.drain(), 30)
            sent += len(chunk)
    except (OSError, TimeoutError, ssl.SSLError):
        pass
    flood.finished += 1
    try:
        await flood.hold.wait()  # keep the connection open while the memory is measured
    finally:
        writer.transport.abort()
    return sent


def huge_heads(served: ServedClinic, connections: int = 50, mib_each: int = 8) -> HugeHeads:
    """``connections`` × ``mib_each`` MiB of request head, never finished, at the dashboard."""
    context = served.client_context(kiosk=False)
    size = mib_each * 1024 * 1024
    probe = ServiceProbe(served)
    before = served.rss_mib()
    peak = before
    stop_sampling = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop_sampling.is_set():
            peak = max(peak, served.rss_mib())
            stop_sampling.wait(0.1)

    async def flood() -> list[int]:
        state = _Flood()
        jobs = [
            asyncio.create_task(_huge_head(context, served.staff_port, size, state))
            for _ in range(connections)
        ]
        # all sent (or cut off), then hold the connections a moment for the peak
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and state.finished < connections:
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        state.hold.set()
        return list(await asyncio.gather(*jobs))

    sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    sampler.start()
    with probe.running():
        sent = asyncio.run(flood())
    stop_sampling.set()
    sampler.join(5)
    time.sleep(2.0)  # let the server notice the closed connections
    after = served.rss_mib()
    return HugeHeads(
        connections,
        mib_each,
        round(before, 1),
        round(peak, 1),
        round(after, 1),
        max(sent, default=0),
        sum(1 for s in sent if s < size),
        probe.figures(),
    )


@dataclass
class SlowHeads:
    connections: int
    #: connections the server had closed by the end
    closed: int
    #: seconds from connecting until the server closed them
    median_s: float
    max_s: float
    #: connections still open when the client gave up (``give_up_s``)
    still_open: int
    service: dict[str, Any]


async def _slow_head(context: ssl.SSLContext, port: int, give_up_s: float) -> float | None:
    """Send a head one byte a second; seconds until the server closed, None if it did not."""
    started = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(HOST, port, ssl=context), 20
        )
    except (OSError, TimeoutError):
        return None
    try:
        writer.write(b"GET / HTTP/1.1\r\n")
        while time.monotonic() - started < give_up_s:
            with contextlib.suppress(TimeoutError):
                if not await asyncio.wait_for(reader.read(4096), 1.0) and reader.at_eof():
                    return time.monotonic() - started
            writer.write(b"X")
    except (OSError, ssl.SSLError):
        return time.monotonic() - started
    finally:
        writer.transport.abort()
    return None


def slow_heads(served: ServedClinic, connections: int = 500, give_up_s: float = 40.0) -> SlowHeads:
    """``connections`` request heads at one byte a second, at the dashboard."""
    context = served.client_context(kiosk=False)
    probe = ServiceProbe(served)

    async def flood() -> list[float | None]:
        jobs = [_slow_head(context, served.staff_port, give_up_s) for _ in range(connections)]
        return list(await asyncio.gather(*jobs))

    with probe.running():
        times = asyncio.run(flood())
    closed = sorted(t for t in times if t is not None)
    return SlowHeads(
        connections,
        len(closed),
        round(closed[len(closed) // 2], 2) if closed else 0.0,
        round(closed[-1], 2) if closed else 0.0,
        connections - len(closed),
        probe.figures(),
    )


# --- the command ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m testbed.bench.listener_flood", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--connections", type=int, default=50, help="huge heads (50)")
    parser.add_argument("--mib", type=int, default=8, help="MiB per huge head (8)")
    parser.add_argument("--slow", type=int, default=500, help="slow heads (500)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="onshi-flood-") as tmp:
        served = start_served_clinic(Path(tmp))
        try:
            huge = huge_heads(served, args.connections, args.mib)
            slow = slow_heads(served, args.slow)
        finally:
            served.stop()
    if args.json:
        print(json.dumps({"huge_heads": asdict(huge), "slow_heads": asdict(slow)}, indent=1))
        return 0
    print(f"huge request heads at the dashboard: {huge.connections} × {huge.mib_each} MiB")
    print(
        f"  server RSS (both processes): before {huge.rss_before_mib} MiB, peak"
        f" {huge.rss_peak_mib} MiB (+{huge.growth_mib:.1f}), after {huge.rss_after_mib} MiB"
        f" (+{huge.kept_mib:.1f})"
    )
    print(
        f"  cut off by the server: {huge.cut_off}/{huge.connections}, most sent by one"
        f" connection: {huge.sent_max_bytes / 1024:.0f} KiB"
    )
    print(f"  meanwhile: {huge.service}")
    print(f"slow request heads at the dashboard: {slow.connections}, one byte a second")
    print(
        f"  closed by the server: {slow.closed}/{slow.connections}, after median"
        f" {slow.median_s} s, at most {slow.max_s} s; still open: {slow.still_open}"
    )
    print(f"  meanwhile: {slow.service}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
