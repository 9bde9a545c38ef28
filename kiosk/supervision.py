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

Journal logging: the units leave stderr connected to the journal (systemd sets
``JOURNAL_STREAM``). Then :func:`configure_logging` sends each record through journald's native
protocol with ``systemd.journal.send`` (systemd-python; Debian's ``python3-systemd`` on the
image), with the record's structured fields as journal fields, so that::

    journalctl -u onshi-kiosk NOTICE=K-201
    journalctl -u onshi-kiosk FLOW_STATE=reader_missing -o json

finds the lines. The fields the kiosk sets (``extra=`` of a logging call; upper-case names
are journal fields, anything else is not sent):

==================  ========================================================================
``FLOW_EVENT``      the flow record's kind (``flow.transition``, ``card.error``...)
``FLOW_STATE``      the flow's state after it (its screen: ``idle``, ``pin_entry``, ``error``...)
``NOTICE``          the numbered notice shown (``K-201``)
``REASON``          the reason code of a transition or error (``card.removed``)
``READER``          the PC/SC reader's name
``DEVICE``          the kiosk's device id (its certificate's CN)
``OUTBOX_DEPTH``    records waiting in the outbox
==================  ========================================================================

Without systemd-python under journald, each line goes to stderr with the ``<N>`` priority
prefix journald reads (sd-daemon(3)); on a terminal, with a timestamp. Whatever the
destination, every record is cleaned first (:func:`kiosk.redaction.clean_record`): personal
fields and values of personal types are blanked, by what they are, not by their shape. The
notify protocol needs nothing from systemd-python and is spoken directly, as above.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from kiosk.redaction import clean_record, extra_fields

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

#: How the kiosk's programs name themselves in the journal (``journalctl -t kiosk``).
SYSLOG_IDENTIFIER = "kiosk"

#: A journal field name (sd_journal_send(3)): upper case, digits and ``_``, not leading ``_``.
_FIELD_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
#: Fields the handler sets itself; ``extra`` cannot override them.
_OWN_FIELDS = frozenset(
    {
        "MESSAGE",
        "MESSAGE_ID",
        "PRIORITY",
        "LOGGER",
        "THREAD_NAME",
        "CODE_FILE",
        "CODE_LINE",
        "CODE_FUNC",
        "SYSLOG_IDENTIFIER",
    }
)


def syslog_priority(levelno: int) -> int:
    for level, priority in PRIORITIES:
        if levelno >= level:
            return priority
    return 7  # debug


class RedactingFormatter(logging.Formatter):
    """Formats the cleaned copy of a record (:func:`kiosk.redaction.clean_record`).

    The record itself is left alone (other handlers may see it); only this handler's text is
    cleaned. Ids, ports, timestamps and the logger name are not data and are kept.
    """

    def format(self, record: logging.LogRecord) -> str:
        return super().format(clean_record(record))


class JournalFormatter(RedactingFormatter):
    """One ``<N>logger: message`` line per line of text, so journald files each at the right
    priority (a traceback included): stderr to the journal, without systemd-python."""

    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def journal_fields(record: logging.LogRecord) -> dict[str, str]:
    """The structured fields of a (cleaned) record that go to the journal: its ``extra``
    fields named as journal fields, with a value (None is left out)."""
    fields: dict[str, str] = {}
    for key, value in extra_fields(record).items():
        if value is None or key in _OWN_FIELDS or not _FIELD_NAME.fullmatch(key):
            continue
        fields[key] = str(value)
    return fields


Sender = Callable[..., object]


def _journal_send() -> Sender | None:
    """``systemd.journal.send``, or None when systemd-python is not installed."""
    try:
        # by name: the repository's own systemd/ folder (unit files) would shadow the
        # package for the type checker
        journal = importlib.import_module("systemd.journal")
    except ImportError:
        return None
    send: Sender = journal.send
    return send


class JournalHandler(logging.Handler):
    """Sends each record to journald as one entry with fields (native protocol).

    What is sent is the record's cleaned copy (:func:`kiosk.redaction.clean_record`):
    ``MESSAGE`` (with a traceback, if any), ``PRIORITY``, ``LOGGER``, ``THREAD_NAME``, the
    code location, ``SYSLOG_IDENTIFIER`` and the upper-case ``extra`` fields
    (:func:`journal_fields`). Unlike systemd-python's own handler it never adds the raw
    arguments (``CODE_ARGS``) or the record's other attributes. ``sender`` is
    ``systemd.journal.send``; a test may hand in another.
    """

    def __init__(self, sender: Sender, *, identifier: str = SYSLOG_IDENTIFIER) -> None:
        super().__init__()
        self._send = sender
        self._identifier = identifier
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            clean = clean_record(record)
            self._send(
                self.format(clean),
                PRIORITY=str(syslog_priority(record.levelno)),
                LOGGER=record.name,
                THREAD_NAME=record.threadName or "",
                CODE_FILE=record.pathname,
                CODE_LINE=record.lineno,
                CODE_FUNC=record.funcName,
                SYSLOG_IDENTIFIER=self._identifier,
                **journal_fields(clean),
            )
        except Exception:
            self.handleError(record)


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


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (as :data:`logging.lastResort`)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(
    journald: bool, level: int = logging.INFO, *, sender: Sender | None = None
) -> logging.Handler:
    """Send the process's logging to the journal (with fields) or to stderr, cleaned.

    ``journald`` (usually :func:`stderr_is_journal`): entries with fields through
    systemd-python (``sender`` replaces ``systemd.journal.send``), or ``<N>``-prefixed
    stderr lines when systemd-python is missing. Otherwise stderr lines with a timestamp, for
    a terminal. Replaces the root logger's handlers (called once, at the start of a process)
    and returns the new one.
    """
    handler: logging.Handler
    send = sender if sender is not None else (_journal_send() if journald else None)
    if journald and send is not None:
        handler = JournalHandler(send)
    elif journald:
        handler = _StderrHandler()
        handler.setFormatter(JournalFormatter())
    else:
        handler = _StderrHandler()
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
