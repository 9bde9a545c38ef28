"""The staff dashboard in a process of its own, supervised by the kiosk API's process.

``clinic-server serve`` binds both listening sockets, serves the kiosk API itself and runs the
dashboard in a child process (``python -m clinic.staff_process``) that inherits the staff
socket: whatever is sent to the dashboard - a flood of connections, huge or slow request
heads, a bug that eats memory or crashes - costs that process, not the kiosks. When the child
ends unasked, ``StaffSupervisor`` starts it again (after 1 s, doubling up to 30 s while it
keeps failing); staff connections wait in the socket's backlog meanwhile.

The child builds its own ``ClinicContext`` on the same settings and database (pickled to its
standard input by the parent: parent and child are one program) and does not touch what the
parent owns: no recovery of interrupted decisions, no purge. Change notices cross between the
two processes over a socket pair, one JSON object per line: ``{"event": notice}`` both ways
(the dashboard's live list learns of new verifications, the kiosks' long-polls of staff
decisions), and ``{"ready": true}`` from the child once it listens. The child runs at a lower
CPU priority (``STAFF_NICENESS``) than the kiosk API. The child ends when the
parent closes its end (the parent stopped or died) or on SIGTERM; it ignores SIGINT, which a
terminal sends to the whole process group, so that the parent stops it in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from clinic.config import ServerConfig
from clinic.crl_store import keep_current
from clinic.events import Event, EventHub
from clinic.times import configure_logging

log = logging.getLogger(__name__)

RESTART_DELAY_S = 1.0
MAX_RESTART_DELAY_S = 30.0
#: A child that ran this long before it ended is restarted after the shortest delay again.
STABLE_AFTER_S = 60.0
STOP_TIMEOUT_S = 10.0
#: The dashboard's process yields the CPU to the kiosk API's: a patient waits at the counter,
#: staff can wait a few milliseconds more (and a password guesser much longer).
STAFF_NICENESS = 5


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode("utf-8") + b"\n"


async def _receive(reader: asyncio.StreamReader, hub: EventHub, on_ready: Any = None) -> None:
    """Deliver the other side's notices to ``hub`` until it closes the channel."""
    while True:
        try:
            raw = await reader.readline()
        except (ValueError, ConnectionError):  # an overlong line, a reset: the channel is gone
            return
        if not raw:
            return
        try:
            message = json.loads(raw)
        except ValueError:
            log.warning("ignoring a malformed message from the other process")
            continue
        if not isinstance(message, dict):
            continue
        event = message.get("event")
        if isinstance(event, dict):
            hub.deliver(event)
        elif message.get("ready") is True and on_ready is not None:
            on_ready()


def _relay(writer: asyncio.StreamWriter) -> Any:
    def send(event: Event) -> None:
        if not writer.is_closing():
            writer.write(_line({"event": event}))

    return send


# --- the parent's side ------------------------------------------------------------------------


class StaffSupervisor:
    """Runs the dashboard's process on ``sock`` and starts it again when it ends unasked."""

    def __init__(self, config: ServerConfig, sock: socket.socket, events: EventHub) -> None:
        self._config = config
        self._sock = sock
        self._events = events
        self._process: subprocess.Popen[bytes] | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.ready = asyncio.Event()
        #: how many times the child was started again
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name="staff-supervisor")

    def stopping(self) -> None:
        """The server is stopping: a child that ends from now on is not started again
        (systemd sends SIGTERM to both processes at once)."""
        self._stopping = True

    async def stop(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL after ``STOP_TIMEOUT_S``) and supervising."""
        self._stopping = True
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            loop = asyncio.get_running_loop()
            try:
                await asyncio.wait_for(loop.run_in_executor(None, process.wait), STOP_TIMEOUT_S)
            except TimeoutError:
                log.warning("the staff dashboard process did not stop: killing it")
                process.kill()
                await loop.run_in_executor(None, process.wait)
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _supervise(self) -> None:
        delay = RESTART_DELAY_S
        while not self._stopping:
            started = time.monotonic()
            try:
                status = await self._run_once()
            except OSError as exc:
                status = None
                log.error("cannot start the staff dashboard process: %s", exc)
            if self._stopping:
                return
            if time.monotonic() - started >= STABLE_AFTER_S:
                delay = RESTART_DELAY_S
            log.error(
                "the staff dashboard process ended (exit status %s): starting it again in %.0f s",
                status,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(MAX_RESTART_DELAY_S, delay * 2)
            self.restarts += 1

    async def _run_once(self) -> int:
        loop = asyncio.get_running_loop()
        parent_end, child_end = socket.socketpair()
        fds = (self._sock.fileno(), child_end.fileno())
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "clinic.staff_process", *(str(fd) for fd in fds)],
                stdin=subprocess.PIPE,
                pass_fds=fds,
            )
        except OSError:
            parent_end.close()
            raise
        finally:
            child_end.close()
        self._process = process
        assert process.stdin is not None
        with process.stdin, contextlib.suppress(BrokenPipeError):
            process.stdin.write(pickle.dumps(self._config))
        reader, writer = await asyncio.open_unix_connection(sock=parent_end)
        self._events.relay_to(_relay(writer))
        try:
            await _receive(reader, self._events, self.ready.set)
        finally:
            self._events.relay_to(None)
            writer.close()
        return await loop.run_in_executor(None, process.wait)


# --- the child's side -------------------------------------------------------------------------


async def _serve_staff(config: ServerConfig, listen: socket.socket, channel: socket.socket) -> None:
    from clinic.dashboard.app import create_staff_app
    from clinic.server import _Listener, build_context, listener_config

    loop = asyncio.get_running_loop()
    context = await loop.run_in_executor(
        None, lambda: build_context(config, recover_interrupted=False)
    )
    context.events.bind(loop)
    listener = _Listener(listener_config(config, create_staff_app(context), mutual=False))
    reader, writer = await asyncio.open_unix_connection(sock=channel)
    context.events.relay_to(_relay(writer))

    def stop() -> None:
        context.events.close()
        listener.should_exit = True

    loop.add_signal_handler(signal.SIGTERM, stop)

    async def from_parent() -> None:
        await _receive(reader, context.events)
        stop()  # the parent closed the channel: it stopped, or died

    async def announce() -> None:
        while not listener.started:
            await asyncio.sleep(0.02)
        writer.write(_line({"ready": True}))

    async def refresh_crls() -> None:  # the kiosks page shows the CRLs' state
        trust = context.trust
        await keep_current(trust.refresh, trust.load_shared, context.run, config.crl_refresh_s)

    tasks = [asyncio.create_task(job()) for job in (from_parent, announce, refresh_crls)]
    try:
        await listener.serve(sockets=[listen])
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        context.events.close()
        writer.close()
        await loop.run_in_executor(None, context.close)


def main(argv: list[str]) -> int:
    """``python -m clinic.staff_process LISTEN_FD CHANNEL_FD``, settings on standard input."""
    from clinic.server import new_event_loop

    if len(argv) != 2:
        print("usage: python -m clinic.staff_process LISTEN_FD CHANNEL_FD", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(STAFF_NICENESS)
    # the parent's own settings object, from the pipe the parent made for this process
    config = pickle.loads(sys.stdin.buffer.read())  # noqa: S301
    if not isinstance(config, ServerConfig):
        print("clinic.staff_process: no settings on standard input", file=sys.stderr)
        return 2
    configure_logging(
        config.log_level, config.timezone, "%(asctime)s %(levelname)s staff %(name)s: %(message)s"
    )
    listen = socket.socket(fileno=int(argv[0]))
    channel = socket.socket(fileno=int(argv[1]))
    listen.setblocking(False)
    channel.setblocking(False)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(_serve_staff(config, listen, channel))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
