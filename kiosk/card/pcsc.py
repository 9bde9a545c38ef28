"""The PC/SC adapter: pyscard's low-level API behind the kiosk's own small interfaces.

* :class:`PcscContext` is one connection to pcscd: list readers, connect to a card.
* :class:`PcscLink` is a connected card, bytes in and bytes out (a :class:`~kiosk.card.jpki.Link`),
  with a time limit on every command so a card that stops answering cannot hang the kiosk.
* :class:`PresenceMonitor` turns ``SCardGetStatusChange`` into presence events: card inserted
  and removed, reader added and removed, the PC/SC service lost and back. It re-establishes
  its context by itself, so pcscd restarting or a reader being replugged needs no kiosk restart.

pyscard's return codes are translated here, in one table, and nothing from pyscard leaves this
module.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from smartcard import scard

from kiosk.errors import (
    CardError,
    CardProtocolError,
    CardRemoved,
    CardTimeout,
    NoCard,
    PcscServiceGone,
    ReaderGone,
)

#: The pseudo-reader whose state changes when readers come and go (pcsc-lite).
PNP_NOTIFICATION = "\\\\?PnP?\\Notification"

#: Longest a single command may take: a signature on a slow contactless card is under 1 s.
DEFAULT_COMMAND_TIMEOUT_S = 5.0

_ERRORS: dict[int, tuple[type[CardError], str]] = {
    scard.SCARD_W_REMOVED_CARD: (CardRemoved, "the card was removed"),
    scard.SCARD_E_NO_SMARTCARD: (NoCard, "no card on the reader"),
    scard.SCARD_W_RESET_CARD: (CardRemoved, "the card was reset by another program"),
    scard.SCARD_W_UNPOWERED_CARD: (CardRemoved, "the card lost power"),
    scard.SCARD_W_UNRESPONSIVE_CARD: (CardProtocolError, "the card does not respond to reset"),
    scard.SCARD_E_READER_UNAVAILABLE: (ReaderGone, "the card reader is unavailable"),
    scard.SCARD_E_UNKNOWN_READER: (ReaderGone, "no such card reader"),
    scard.SCARD_E_NO_READERS_AVAILABLE: (ReaderGone, "no card reader is connected"),
    scard.SCARD_E_NO_SERVICE: (PcscServiceGone, "the PC/SC service (pcscd) is not running"),
    scard.SCARD_E_SERVICE_STOPPED: (PcscServiceGone, "the PC/SC service (pcscd) stopped"),
    scard.SCARD_E_INVALID_HANDLE: (PcscServiceGone, "the PC/SC connection is no longer valid"),
    scard.SCARD_E_TIMEOUT: (CardTimeout, "the card reader timed out"),
    scard.SCARD_E_PROTO_MISMATCH: (CardProtocolError, "the card speaks no protocol we offer"),
    scard.SCARD_E_COMM_DATA_LOST: (CardRemoved, "communication with the card was lost"),
    scard.SCARD_E_NOT_TRANSACTED: (
        CardRemoved,
        "the command did not reach the card (was it removed?)",
    ),
}


def translate(hresult: int, operation: str) -> CardError:
    """The kiosk's error for a PC/SC return code."""
    error, text = _ERRORS.get(hresult, (CardError, ""))
    if not text:
        text = f"PC/SC error {hresult & 0xFFFFFFFF:#010x} ({_message(hresult)})"
    return error(f"{operation}: {text}")


def _message(hresult: int) -> str:
    try:
        return str(scard.SCardGetErrorMessage(hresult)).strip()
    except Exception:  # pragma: no cover - the message is only decoration
        return "unknown"


def _check(hresult: int, operation: str) -> None:
    if hresult == scard.SCARD_S_SUCCESS:
        return
    if hresult not in _ERRORS and not _service_alive():
        # a client whose daemon died gets odd codes (e.g. "access denied"): say what happened
        raise PcscServiceGone(f"{operation}: the PC/SC service (pcscd) went away")
    raise translate(hresult, operation)


def _service_alive() -> bool:
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return False
    scard.SCardReleaseContext(context)
    return True


class PcscContext:
    """One connection to the PC/SC service."""

    def __init__(self) -> None:
        hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        _check(hresult, "connect to pcscd")
        self._context = context
        self._released = False

    def __enter__(self) -> PcscContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        if not self._released:
            self._released = True
            scard.SCardReleaseContext(self._context)

    def readers(self) -> list[str]:
        """The reader names pcscd knows; empty when none is connected."""
        hresult, readers = scard.SCardListReaders(self._context, [])
        if hresult in (scard.SCARD_E_NO_READERS_AVAILABLE, scard.SCARD_E_READER_UNAVAILABLE):
            return []
        _check(hresult, "list readers")
        return list(readers)

    def card_present(self, reader: str) -> bool:
        """Whether a card sits on ``reader`` right now."""
        hresult, states = scard.SCardGetStatusChange(
            self._context, 0, [(reader, scard.SCARD_STATE_UNAWARE)]
        )
        if hresult == scard.SCARD_E_TIMEOUT:
            return False
        _check(hresult, f"read the state of {reader}")
        return bool(states[0][1] & scard.SCARD_STATE_PRESENT)

    def connect(
        self, reader: str, *, command_timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S
    ) -> PcscLink:
        """Connect to the card on ``reader`` (shared, T=0 or T=1)."""
        hresult, handle, protocol = scard.SCardConnect(
            self._context,
            reader,
            scard.SCARD_SHARE_SHARED,
            scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
        )
        _check(hresult, f"connect to the card on {reader}")
        return PcscLink(reader, handle, protocol, command_timeout_s=command_timeout_s)


def open_link(reader: str, *, command_timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S) -> PcscLink:
    """Connect to the card on ``reader`` with a context of its own, released on close."""
    context = PcscContext()
    try:
        link = context.connect(reader, command_timeout_s=command_timeout_s)
    except BaseException:
        context.release()
        raise
    link.owned_context = context
    return link


class PcscLink:
    """A connected card: one command APDU in, one response APDU out, each within a time limit.

    pcscd blocks for as long as a card takes to answer, and a faulty card can take forever.
    Commands therefore run on a worker thread; the caller waits at most ``command_timeout_s``
    and then gets :class:`CardTimeout`, and the link is dead from then on.
    """

    def __init__(
        self, reader: str, handle: Any, protocol: int, *, command_timeout_s: float
    ) -> None:
        self.reader = reader
        self._handle = handle
        self._pci = (
            scard.SCARD_PCI_T1 if protocol == scard.SCARD_PROTOCOL_T1 else (scard.SCARD_PCI_T0)
        )
        self._timeout = command_timeout_s
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._dead: CardError | None = None
        self._closed = False
        #: A context this link releases when it closes (see :func:`open_link`).
        self.owned_context: PcscContext | None = None
        self._worker = threading.Thread(target=self._work, name=f"pcsc:{reader}", daemon=True)
        self._worker.start()

    def __enter__(self) -> PcscLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job()

    def _call(self, operation: str, function: Callable[[], Any]) -> Any:
        if self._dead is not None:
            raise type(self._dead)(str(self._dead))
        if self._closed:
            raise CardRemoved(f"{operation}: the connection to the card is closed")
        done = threading.Event()
        outcome: list[Any] = []

        def job() -> None:
            try:
                outcome.append(function())
            except BaseException as exc:  # handed to the caller below
                outcome.append(exc)
            done.set()

        self._jobs.put(job)
        if not done.wait(self._timeout):
            self._dead = CardTimeout(f"{operation}: no answer within {self._timeout:g} s")
            raise self._dead
        result = outcome[0]
        if isinstance(result, BaseException):
            raise CardError(f"{operation}: {result}") from result
        return result

    def transmit(self, command: bytes) -> bytes:
        hresult, response = self._call(
            "transmit", lambda: scard.SCardTransmit(self._handle, self._pci, list(command))
        )
        _check(hresult, "transmit")
        if not response:
            # A card always answers at least a status word; the reader driver reports an
            # empty success when the card left the field mid-command (vpcd, some CCID).
            raise CardRemoved("transmit: the card gave no answer (was it removed?)")
        return bytes(response)

    @property
    def atr(self) -> bytes:
        hresult, _reader, _state, _protocol, atr = self._call(
            "status", lambda: scard.SCardStatus(self._handle)
        )
        _check(hresult, "read the ATR")
        return bytes(atr)

    def close(self) -> None:
        """Disconnect and reset the card, so no verified PIN outlives this session.

        Never blocks: on a hung card the disconnect waits in the worker behind it.
        """
        if self._closed:
            return
        self._closed = True
        handle = self._handle
        self._jobs.put(lambda: scard.SCardDisconnect(handle, scard.SCARD_RESET_CARD))
        context = self.owned_context
        if context is not None:
            self._jobs.put(context.release)
        self._jobs.put(None)
        if self._dead is None:
            self._worker.join(self._timeout)


# --- presence --------------------------------------------------------------------------------


class Presence(StrEnum):
    CARD_INSERTED = "card_inserted"
    CARD_REMOVED = "card_removed"
    READER_ADDED = "reader_added"
    READER_REMOVED = "reader_removed"
    SERVICE_LOST = "service_lost"
    SERVICE_BACK = "service_back"


@dataclass(frozen=True)
class PresenceEvent:
    kind: Presence
    reader: str | None = None
    atr: bytes = b""


@dataclass(frozen=True)
class ReaderState:
    """What one reader looked like at one moment."""

    present: bool
    #: pcsc-lite counts card events in the upper 16 bits of the event state, so a removal
    #: and re-insertion between two looks still shows as a change.
    events: int = 0
    atr: bytes = b""


def presence_changes(
    before: Mapping[str, ReaderState], after: Mapping[str, ReaderState]
) -> list[PresenceEvent]:
    """The events that turn one snapshot of the readers into the next (pure)."""
    events: list[PresenceEvent] = []
    for reader, old in before.items():
        if reader not in after:
            if old.present:
                events.append(PresenceEvent(Presence.CARD_REMOVED, reader))
            events.append(PresenceEvent(Presence.READER_REMOVED, reader))
    for reader, new in after.items():
        old_state = before.get(reader)
        if old_state is None:
            events.append(PresenceEvent(Presence.READER_ADDED, reader))
            if new.present:
                events.append(PresenceEvent(Presence.CARD_INSERTED, reader, new.atr))
            continue
        swapped = old_state.present and new.present and old_state.events != new.events
        if old_state.present and (not new.present or swapped):
            events.append(PresenceEvent(Presence.CARD_REMOVED, reader))
        if new.present and (not old_state.present or swapped):
            events.append(PresenceEvent(Presence.CARD_INSERTED, reader, new.atr))
    return events


def _state_from(event_state: int, atr: Iterable[int]) -> ReaderState:
    present = bool(event_state & scard.SCARD_STATE_PRESENT) and not bool(
        event_state & (scard.SCARD_STATE_UNAVAILABLE | scard.SCARD_STATE_MUTE)
    )
    return ReaderState(present, (event_state >> 16) & 0xFFFF, bytes(atr) if present else b"")


_SERVICE_GONE = {
    scard.SCARD_E_NO_SERVICE,
    scard.SCARD_E_SERVICE_STOPPED,
    scard.SCARD_E_INVALID_HANDLE,
}


class PresenceMonitor:
    """Watches pcscd for readers and cards; call :meth:`poll` from one thread.

    The first successful poll reports every reader and card already there, as if they had
    just arrived, so a caller needs no separate start-up scan.
    """

    def __init__(self, *, retry_s: float = 0.5) -> None:
        self._retry_s = retry_s
        self._context: Any = None
        self._service_up: bool | None = None
        self._known: dict[str, ReaderState] = {}
        self._raw: dict[str, int] = {}
        self._pnp_state = scard.SCARD_STATE_UNAWARE
        self._pnp_supported = True
        self._wake = threading.Event()
        self._closed = False

    def close(self) -> None:
        """Stop: a :meth:`poll` in progress returns soon with no events."""
        self._closed = True
        self._wake.set()
        context = self._context
        if context is not None:
            scard.SCardCancel(context)

    def _drop_context(self) -> list[PresenceEvent]:
        if self._context is not None:
            scard.SCardReleaseContext(self._context)
            self._context = None
        events = presence_changes(self._known, {})
        self._known = {}
        self._raw = {}
        self._pnp_state = scard.SCARD_STATE_UNAWARE
        if self._service_up is not False:
            events.append(PresenceEvent(Presence.SERVICE_LOST))
        self._service_up = False
        return events

    def _establish(self) -> list[PresenceEvent]:
        hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hresult != scard.SCARD_S_SUCCESS:
            return self._drop_context()
        self._context = context
        events: list[PresenceEvent] = []
        if self._service_up is False:
            events.append(PresenceEvent(Presence.SERVICE_BACK))
        self._service_up = True
        return events

    def _list_readers(self) -> list[str]:
        hresult, readers = scard.SCardListReaders(self._context, [])
        if hresult in _SERVICE_GONE:
            raise PcscServiceGone("pcscd went away")
        if hresult != scard.SCARD_S_SUCCESS:
            return []
        return list(readers)

    def poll(self, timeout_s: float) -> list[PresenceEvent]:
        """Wait up to ``timeout_s`` for changes and return them (possibly none)."""
        if self._closed:
            return []
        events: list[PresenceEvent] = []
        if self._context is None:
            events += self._establish()
            if self._context is None:
                self._wake.wait(min(timeout_s, self._retry_s))
                return events
        try:
            events += self._refresh_readers()
            if events:
                return events
            events += self._wait_for_change(timeout_s)
        except PcscServiceGone:
            events += self._drop_context()
        return events

    def _refresh_readers(self) -> list[PresenceEvent]:
        """Pick up readers that appeared or vanished, with the cards on them."""
        readers = self._list_readers()
        if set(readers) == set(self._known) and self._known:
            return []
        if not readers and not self._known:
            return []
        states = [(r, scard.SCARD_STATE_UNAWARE) for r in readers]
        after: dict[str, ReaderState] = {}
        raw: dict[str, int] = {}
        if states:
            hresult, new_states = scard.SCardGetStatusChange(self._context, 0, states)
            if hresult in _SERVICE_GONE:
                raise PcscServiceGone("pcscd went away")
            if hresult not in (scard.SCARD_S_SUCCESS, scard.SCARD_E_TIMEOUT):
                return []
            for reader, event_state, atr in new_states:
                after[reader] = _state_from(event_state, atr)
                raw[reader] = event_state & ~scard.SCARD_STATE_CHANGED
        events = presence_changes(self._known, after)
        self._known = after
        self._raw = raw
        return events

    def _wait_for_change(self, timeout_s: float) -> list[PresenceEvent]:
        states = [(r, self._raw[r]) for r in self._known]
        if self._pnp_supported:
            states.append((PNP_NOTIFICATION, self._pnp_state))
        if not states:  # no reader and no way to hear of one: look again later
            self._wake.wait(min(timeout_s, self._retry_s))
            return []
        timeout_ms = max(0, int(timeout_s * 1000))
        hresult, new_states = scard.SCardGetStatusChange(self._context, timeout_ms, states)
        if hresult in (scard.SCARD_E_TIMEOUT, scard.SCARD_E_CANCELLED):
            return []
        if hresult in _SERVICE_GONE:
            raise PcscServiceGone("pcscd went away")
        if hresult in (scard.SCARD_E_UNKNOWN_READER, scard.SCARD_E_READER_UNAVAILABLE):
            return self._refresh_readers()  # a reader vanished under us
        if hresult != scard.SCARD_S_SUCCESS:
            raise PcscServiceGone(f"watching readers failed: {translate(hresult, 'watch')}")
        after = dict(self._known)
        for reader, event_state, atr in new_states:
            if reader == PNP_NOTIFICATION:
                if event_state & scard.SCARD_STATE_UNKNOWN:
                    self._pnp_supported = False
                self._pnp_state = event_state & ~scard.SCARD_STATE_CHANGED
                continue
            if event_state & scard.SCARD_STATE_CHANGED:
                after[reader] = _state_from(event_state, atr)
                self._raw[reader] = event_state & ~scard.SCARD_STATE_CHANGED
        events = presence_changes(self._known, after)
        self._known = after
        # a reader may have come or gone: the next poll's refresh reports it
        return events
