"""The card reader, for the flow: presence events and card jobs, on two threads.

* the **presence watcher** turns pcscd's reader and card events
  (:class:`~kiosk.card.pcsc.PresenceMonitor`) into flow events for the configured reader;
* the **card jobs** (a :class:`~kiosk.flow.queue_worker.QueueWorker`) run one at a time over
  ``open_link``: open the card, token, tries left (reported at once), then the certificate
  while the patient types; VERIFY; sign. A job queued for a session that has ended is skipped.

A failing job is reported as an event (``CardFailed``, or ``ServerFailed`` for the server
request a signing job makes); the flow never waits on this thread.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from kiosk.card.jpki import JpkiSession, Link, PinEntry, PinPolicy, Token
from kiosk.card.pcsc import Presence, PresenceEvent
from kiosk.errors import (
    CardError,
    KioskError,
    PinLocked,
    PinNotUsable,
    ServerError,
    WrongPin,
)
from kiosk.flow.events import (
    CardFacts,
    CardFailed,
    CardInserted,
    CardLifted,
    CardRead,
    Event,
    PinAccepted,
    PinWrong,
    ReaderBack,
    ReaderLost,
)
from kiosk.flow.queue_worker import Job, QueueWorker
from kiosk.flow.server_worker import server_failed

Post = Callable[[Event], None]

#: Tokens the kiosk serves; anything else is not a card it can check.
SERVED_TOKENS = (Token.MYNUMBER_CARD, Token.ANDROID, Token.IPHONE)


#: Tokens whose holder staff can check by sight: a My Number card shows a photo; an iPhone
#: authenticates its owner on the phone, and one that cannot give a PIN goes to staff.
VISUAL_TOKENS = (Token.MYNUMBER_CARD, Token.IPHONE)


def card_facts(token: Token, tries: int | None, *, verified: bool) -> CardFacts:
    """What the flow learns from an opened card. Only an iPhone's "already verified" counts:
    its owner passed Face ID or Touch ID on the phone; every other token is PIN-first."""
    return CardFacts(
        str(token),
        tries,
        token in VISUAL_TOKENS,
        pin_verified=verified and token is Token.IPHONE,
    )


class Presences(Protocol):
    """Presence events from pcscd (:class:`~kiosk.card.pcsc.PresenceMonitor`)."""

    def poll(self, timeout_s: float) -> list[PresenceEvent]: ...

    def close(self) -> None: ...


@dataclass
class CardContext:
    """The open card of one session, as card jobs see it (on the card worker's thread)."""

    session: int
    jpki: JpkiSession
    token: Token
    certificate: bytes | None = None

    def certificate_der(self) -> bytes:
        """The user-authentication certificate (read now if it was not yet: a phone's, after
        VERIFY)."""
        if self.certificate is None:
            self.certificate = self.jpki.read_certificate()
        return self.certificate


CardJob = Callable[[CardContext], None]


class CardWorker(QueueWorker):
    """The card reader: presence events and card jobs (see the module docstring).

    ``reader`` is the configured reader's name, or None to use the first reader pcscd reports
    (and the next one, when it goes). ``connect`` opens a link to the card on a reader
    (:func:`~kiosk.card.pcsc.open_link` in the kiosk); ``presences`` and ``list_readers`` are
    pcscd's (:class:`~kiosk.card.pcsc.PresenceMonitor`, ``PcscContext().readers``).
    """

    def __init__(
        self,
        post: Post,
        *,
        reader: str | None,
        policy: PinPolicy,
        connect: Callable[[str], Link],
        presences: Presences,
        list_readers: Callable[[], list[str]],
        poll_s: float = 30.0,
    ) -> None:
        super().__init__("card-jobs", "card-job", "a card job failed")
        self._post = post
        self._configured = reader
        self._active_reader = reader
        self._policy = policy
        self._connect = connect
        self._presences = presences
        self._list_readers = list_readers
        self._poll_s = poll_s
        self._lock = threading.Lock()
        self._session: int | None = None  # the session whose jobs run
        self._card: CardContext | None = None
        self._link: Link | None = None
        self._stopping = threading.Event()
        self._reader_state = "unknown"
        self._card_present = False
        self._watch_thread = threading.Thread(target=self._watch, name="card-presence", daemon=True)

    # -- life --

    def start(self) -> None:
        super().start()
        self._watch_thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        self._presences.close()
        self.close(timeout_s)
        if self._watch_thread.is_alive():
            self._watch_thread.join(timeout_s)
        self._close_link()

    def reader_state(self) -> str:
        """``present``, ``card`` (a card on it), ``absent``, ``pcscd_gone`` or ``unknown``."""
        if self._reader_state == "present" and self._card_present:
            return "card"
        return self._reader_state

    @property
    def reader(self) -> str | None:
        return self._active_reader

    # -- presence --

    def _watch(self) -> None:
        self.check_reader_now()
        while not self._stopping.is_set():
            try:
                events = self._presences.poll(self._poll_s)
            except Exception:
                self._log_failure("presence", "watching the card reader failed")
                self._stopping.wait(1.0)
                continue
            for event in events:
                self._on_presence(event)

    def _ours(self, reader: str | None) -> bool:
        return reader is not None and reader == self._active_reader

    def _on_presence(self, event: PresenceEvent) -> None:
        kind = event.kind
        if kind is Presence.READER_ADDED:
            wanted = self._configured is None and self._active_reader is None
            if wanted or event.reader == self._configured:
                self._active_reader = event.reader
                self._reader_state = "present"
                self._post(ReaderBack())
        elif kind is Presence.READER_REMOVED and self._ours(event.reader):
            self._reader_state = "absent"
            self._card_present = False
            if self._configured is None:
                self._active_reader = None
            self._post(ReaderLost("card.reader_gone"))
        elif kind is Presence.CARD_INSERTED and self._ours(event.reader):
            self._card_present = True
            self._post(CardInserted())
        elif kind is Presence.CARD_REMOVED and self._ours(event.reader):
            self._card_present = False
            self._post(CardLifted())
        elif kind is Presence.SERVICE_LOST:
            self._reader_state = "pcscd_gone"
            self._card_present = False
            if self._configured is None:
                self._active_reader = None
            self._post(ReaderLost("card.pcsc_gone"))

    def check_reader(self) -> None:
        """Report whether the reader is there (ReaderBack or ReaderLost), from the job thread."""
        self._put(self.check_reader_now)

    def check_reader_now(self) -> None:
        try:
            readers = self._list_readers()
        except CardError as exc:
            self._reader_state = "pcscd_gone" if exc.code == "card.pcsc_gone" else "absent"
            self._post(ReaderLost(exc.code))
            return
        except Exception:
            self._log_failure("readers", "listing the card readers failed")
            self._reader_state = "unknown"
            self._post(ReaderLost("card.reader_gone"))
            return
        if self._configured is None and self._active_reader not in readers:
            self._active_reader = readers[0] if readers else None
        if self._active_reader is not None and self._active_reader in readers:
            self._reader_state = "present"
            self._post(ReaderBack())
        else:
            self._reader_state = "absent"
            self._post(ReaderLost("card.reader_gone"))

    # -- card jobs --

    def _put_for(self, session: int, job: Job) -> None:
        """Queue ``job``, to run only if ``session`` is still the card's session by then."""

        def run() -> None:
            with self._lock:
                current = self._session
            if current == session:
                job()

        self._put(run)

    def read_card(self, session: int) -> None:
        """Open the card of ``session``: token and tries left are reported at once
        (``CardRead``), then the certificate is read and kept, and the PIN file selected,
        while the patient types."""
        with self._lock:
            self._session = session
        self._put_for(session, lambda: self._read(session))

    def pin_entry(self, session: int) -> PinEntry | None:
        """A fresh PIN entry bound to the card session, or None if that card is gone."""
        card = self._card
        if card is None or card.session != session:
            return None
        return card.jpki.pin_entry()

    def verify_pin(self, session: int, entry: PinEntry) -> None:
        def verify(card: CardContext) -> None:
            try:
                card.jpki.verify_pin(entry)
            except WrongPin as exc:
                self._post(PinWrong(session, exc.tries_left))
                return
            except PinLocked:
                self._post(PinWrong(session, 0))
                return
            self._post(PinAccepted(session))

        self.run_job(session, verify)

    def run_job(self, session: int, job: CardJob) -> None:
        """Run ``job`` with the open card of ``session`` (skipped once the session ended).

        Card errors are reported as ``CardFailed``, server errors as ``ServerFailed``.
        """

        def run() -> None:
            card = self._card
            if card is None or card.session != session:
                self._post(CardFailed(session, "card.removed"))
                return
            self._reported(session, lambda: job(card))

        self._put_for(session, run)

    def end_session(self, session: int) -> None:
        """Skip the session's queued jobs; close its link (the card is reset: no verified PIN
        outlives the session)."""
        with self._lock:
            if self._session == session:
                self._session = None

        def close() -> None:
            with self._lock:
                current = self._session
            if current is None or current == session:
                self._close_link()

        self._put(close)

    def _reported(self, session: int, action: Callable[[], None]) -> None:
        try:
            action()
        except ServerError as exc:  # the request of a signing job
            self._post(server_failed(session, exc))
        except KioskError as exc:
            if isinstance(exc, CardError):
                self._close_link()
            self._post(CardFailed(session, exc.code))
        except Exception:
            self._log_failure("card-internal", "a card operation failed unexpectedly")
            self._close_link()
            self._post(CardFailed(session, "card.internal"))

    def _read(self, session: int) -> None:
        def read() -> None:
            self._close_link()
            reader = self._active_reader
            if reader is None:
                self._post(CardFailed(session, "card.reader_gone"))
                return
            link = self._connect(reader)
            self._link = link
            jpki = JpkiSession(link, self._policy)
            token = jpki.open()
            if token not in SERVED_TOKENS:
                self._post(CardFailed(session, "card.unsupported_token"))
                return
            tries: int | None
            try:
                tries = jpki.pin_tries_left()
            except PinLocked:
                tries = 0
            except PinNotUsable:
                tries = None
            card = CardContext(session, jpki, token)
            self._card = card
            self._post(CardRead(session, card_facts(token, tries, verified=jpki.pin_verified)))
            # while the patient reads the screen and types: the certificate, then the PIN
            # file selected again, so the fourth digit costs one VERIFY and no SELECT
            if not jpki.needs_pin_for_certificate:
                card.certificate = jpki.read_certificate()
            if tries is not None and tries > 0:
                jpki.pin_tries_left()

        self._reported(session, read)

    def _close_link(self) -> None:
        link, self._link = self._link, None
        self._card = None
        if link is not None:
            close = getattr(link, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()
