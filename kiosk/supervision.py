"""Living under systemd: readiness, status, the watchdog, and logging to the journal.

The notify protocol is spoken directly (no libsystemd): one datagram per message to the unix
socket named by ``NOTIFY_SOCKET`` (a path, or an abstract name written with a leading ``@``),
newline-separated ``KEY=VALUE`` assignments. Without ``NOTIFY_SOCKET`` (a terminal, a test, a
unit that is not ``Type=notify``) every call does nothing. A failed send is logged and
otherwise ignored: the kiosk keeps serving patients whatever happens to systemd.

A process's main loop, in short::

    configure_logging(journald=stderr_is_journal())
    notifier = Notifier.from_env()
    watchdog = Watchdog.from_env(notifier)
    ...                                      # build everything from the validated config
    notifier.ready("idle")
    while running:
        handle(next_event(timeout=watchdog.max_block_s))   # never block longer than this
        watchdog.progress()
    notifier.stopping()

:class:`Watchdog` pings only when the loop reports progress, so a loop that hangs stops the
pings and systemd restarts the unit (``WatchdogSec=``).

Journal logging: the units leave stderr connected to the journal, and :func:`configure_logging`
writes each line with the ``<N>`` syslog priority prefix that journald reads (sd-daemon(3)).
This needs no C extension (``systemd-python`` would have to be built on every Pi against
``libsystemd-dev``) and needs no journald to test. Whatever the destination, the formatter
blanks what looks like personal data: the kiosk logs codes, never records.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


def _notify_address(value: str | None) -> str | None:
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    log.warning("NOTIFY_SOCKET is neither a path nor an abstract name: not notifying systemd")
    return None


class Notifier:
    """Sends sd_notify messages to the socket systemd named, or nothing when none was named."""

    def __init__(self, address: str | None) -> None:
        self._target = _notify_address(address)
        #: the socket address as given (``@name`` or ``/path``), None when disabled
        self.address = address if self._target is not None else None
        self._failed_before = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self._target is not None

    def send(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` lines as one message; True when it was sent."""
        if self._target is None:
            return False
        for line in assignments:
            if "=" not in line or "\n" in line:
                raise ValueError(f"not a single KEY=VALUE assignment: {line!r}")
        message = "\n".join(assignments).encode("utf-8")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                # never wait on systemd: a full queue drops this message (EAGAIN) instead
                sock.setblocking(False)
                sock.sendto(message, self._target)
        except OSError as exc:
            if not self._failed_before:
                log.warning("cannot notify systemd (%s); carrying on", exc.strerror or exc)
                self._failed_before = True
            return False
        self._failed_before = False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Startup is complete (``Type=notify`` units count as started from here)."""
        return self.send("READY=1", *_status(status))

    def status(self, text: str) -> bool:
        """A one-line status for ``systemctl status``."""
        return self.send(*_status(text))

    def watchdog(self) -> bool:
        """Keep-alive ping for ``WatchdogSec=``; use :class:`Watchdog`, which paces it."""
        return self.send("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        """Shutting down on purpose."""
        return self.send("STOPPING=1", *_status(status))


def _status(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    return ("STATUS=" + " ".join(text.split()),)


class Watchdog:
    """Pings systemd's watchdog while, and only while, the caller makes progress.

    Call :meth:`progress` from the main loop, aiming at least every :attr:`max_block_s` (a
    quarter of ``WatchdogSec=``). It sends ``WATCHDOG=1`` when a quarter of the timeout has
    passed since the last ping, so even a loop that sometimes takes twice as long between
    calls keeps the pings within three quarters of the timeout, well inside what systemd
    allows (half, as sd_watchdog_enabled(3) suggests, would leave no room for that). A loop
    that stops calling stops the pings, and systemd restarts the service ``WatchdogSec=``
    later. Disabled (every call a no-op) unless ``WATCHDOG_USEC`` is set for this process.
    """

    def __init__(
        self,
        notifier: Notifier,
        timeout_s: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._notifier = notifier
        self.timeout_s = timeout_s if notifier.enabled else None
        self._clock = clock
        self._last_ping: float | None = None

    @classmethod
    def from_env(
        cls,
        notifier: Notifier,
        environ: Mapping[str, str] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> Watchdog:
        """From ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``, which must be this process if set)."""
        env = os.environ if environ is None else environ
        usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
        timeout_s: float | None = None
        if usec:
            try:
                value = int(usec)
                for_us = pid is None or int(pid) == os.getpid()
            except ValueError:
                log.warning("WATCHDOG_USEC or WATCHDOG_PID is not a number: no watchdog")
            else:
                if value > 0 and for_us:
                    timeout_s = value / 1_000_000
        return cls(notifier, timeout_s, clock=clock)

    @property
    def enabled(self) -> bool:
        return self.timeout_s is not None

    @property
    def interval_s(self) -> float | None:
        """The shortest time between two pings: a quarter of the timeout."""
        return None if self.timeout_s is None else self.timeout_s / 4

    @property
    def max_block_s(self) -> float | None:
        """The longest the main loop should wait between two :meth:`progress` calls."""
        return self.interval_s

    def progress(self) -> bool:
        """The main loop is alive: ping if a quarter of the timeout has passed. True if pinged."""
        if self.timeout_s is None:
            return False
        now = self._clock()
        if self._last_ping is not None and now - self._last_ping < self.timeout_s / 4:
            return False
        self._last_ping = now
        return self._notifier.watchdog()


# --- logging ---------------------------------------------------------------------------------

#: syslog priorities of the logging levels (journald reads them from a ``<N>`` prefix)
PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))

REDACTED = "<redacted>"
#: What must never reach a log: runs of 4 or more digits (a PIN, a My Number, an insurer or
#: insured-person number, a birth date, a certificate serial) and any text outside ASCII (a
#: name or an address in Japanese). The kiosk's codes (``K-201``, ``card.removed``) pass.
_PERSONAL = re.compile(r"\d{4,}|[^\x00-\x7f]+")


def redact(text: str) -> str:
    """``text`` with whatever could be personal data replaced by ``<redacted>``."""
    return _PERSONAL.sub(REDACTED, text)


def syslog_priority(levelno: int) -> int:
    for level, priority in PRIORITIES:
        if levelno >= level:
            return priority
    return 7  # debug


class RedactingFormatter(logging.Formatter):
    """Formats a record with its message, exception and stack redacted (:func:`redact`).

    The record itself is left alone (other handlers may see it); only this handler's text is
    cleaned. The timestamp and the logger name are not data and are kept.
    """

    def format(self, record: logging.LogRecord) -> str:
        clean = logging.makeLogRecord(record.__dict__)
        clean.msg, clean.args = redact(record.getMessage()), None
        if record.exc_info:
            clean.exc_text = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            clean.exc_text = redact(record.exc_text)
        clean.exc_info = None
        clean.stack_info = redact(record.stack_info) if record.stack_info else None
        return super().format(clean)


class JournalFormatter(RedactingFormatter):
    """One ``<N>logger: message`` line per line of text, so journald files each at the right
    priority (a traceback included)."""

    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def stderr_is_journal(environ: Mapping[str, str] | None = None, fd: int | None = None) -> bool:
    """True when stderr is the journal's stream (systemd sets ``JOURNAL_STREAM=dev:inode``)."""
    env = os.environ if environ is None else environ
    value = env.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    try:
        st = os.fstat(sys.stderr.fileno() if fd is None else fd)
        return (st.st_dev, st.st_ino) == (int(device), int(inode))
    except (ValueError, OSError):
        return False


_HANDLER_MARK = "_onshi_kiosk_handler"


def configure_logging(journald: bool, level: int = logging.INFO) -> logging.Handler:
    """Send the process's logging to stderr, redacted; priority-prefixed for the journal.

    Replaces the root logger's handlers (called once, at the start of a process) and returns
    the new one. With ``journald`` False, lines carry a timestamp for a terminal.
    """
    handler = logging.StreamHandler(sys.stderr)
    if journald:
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if getattr(old, _HANDLER_MARK, False):
            old.close()
    root.addHandler(handler)
    root.setLevel(level)
    return handler
