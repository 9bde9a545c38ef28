"""Runs the verification flow: executes the machine's effects, feeds their results back.

Threads, each with one job, none of them deciding anything (the machine decides):

* the **runner loop** (:class:`FlowRunner`) blocks on its event queue; the one pending timeout
  is the queue's wait (no timer thread, no polling: idle CPU is near zero). It steps the
  machine and executes the effects in order: screen, lights, buzzer, timer, PIN entry, and
  hands card and server work to the workers;
* the **presence watcher** (:class:`CardWorker`) turns pcscd's reader and card events
  (:class:`~kiosk.card.pcsc.PresenceMonitor`) into flow events for the configured reader;
* the **card worker** runs card jobs one at a time over ``open_link``: open the card, token,
  tries left (reported at once), then the certificate while the patient types; VERIFY; sign;
* the **server worker** (:class:`ServerWorker`) prefetches a challenge on card placement (which
  also opens the TLS connection), refreshes it while it would go stale, and long-polls the
  server while staff decide a visual check;
* the **journal** appends records to the outbox (an fsync each) off the critical path.

A worker that fails reports an event (``CardFailed``, ``ServerFailed``); a worker that hangs is
caught by the state's own timeout. The flow is never stuck.

PIN digits: a DIGIT touch reaches the loop with its value, which the loop keeps for exactly one
step and types into the session's :class:`~kiosk.card.jpki.PinEntry` if - and only if - the
machine answers :class:`AcceptDigit`. The digit is never in an event, an effect or a record.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from kiosk.card.jpki import JpkiSession, Link, PinEntry, PinPolicy, Token
from kiosk.card.pcsc import Presence, PresenceEvent
from kiosk.challenge import Mode, signed_message
from kiosk.clinic_client import Challenge, VerificationResult
from kiosk.errors import (
    CardError,
    KioskError,
    PinLocked,
    PinNotUsable,
    ServerError,
    ServerRejected,
    ServerUnreachable,
    WrongPin,
)
from kiosk.flow.machine import (
    AcceptDigit,
    Answer,
    AwaitStaffDecision,
    CardFacts,
    CardFailed,
    CardInserted,
    CardRead,
    CardRemoved,
    CheckReader,
    ClearPin,
    ConfirmVisual,
    Effect,
    EndSession,
    EraseDigit,
    Event,
    FlowMachine,
    FlowState,
    NewPinEntry,
    PinAccepted,
    PinWrong,
    PlaySound,
    PrepareServer,
    Pressed,
    ReadCard,
    ReaderBack,
    ReaderLost,
    Record,
    ServerAnswered,
    ServerFailed,
    SetLights,
    ShowScreen,
    SignAndSend,
    StaffButton,
    StartTimer,
    TimerFired,
    VerifyPin,
)
from kiosk.flow.screens import Language, PatientDisplay, Screen, ScreenId, UiAction, UiInput
from kiosk.hw.signals import LightSignal, Sound

log = logging.getLogger(__name__)

Post = Callable[[Event], None]

#: Tokens the kiosk serves; anything else is not a card it can check.
SERVED_TOKENS = (Token.MYNUMBER_CARD, Token.ANDROID, Token.IPHONE)


# --- what the runner drives ----------------------------------------------------------------------


class Lights(Protocol):
    def show(self, signal: LightSignal, *, reminder: int = 0) -> None: ...


class Sounder(Protocol):
    def play(self, sound: Sound) -> None: ...


class RecordSink(Protocol):
    """Where records go: :class:`~kiosk.outbox.store.Outbox` in the kiosk."""

    def append(self, kind: str, payload: Mapping[str, Any]) -> int: ...


class Presences(Protocol):
    """Presence events from pcscd (:class:`~kiosk.card.pcsc.PresenceMonitor`)."""

    def poll(self, timeout_s: float) -> list[PresenceEvent]: ...

    def close(self) -> None: ...


class EligibilityApi(Protocol):
    """What the flow asks the clinic server (:class:`~kiosk.clinic_client.ClinicClient`)."""

    def challenge(self) -> Challenge: ...

    def verify(
        self, nonce: bytes, mode: Mode, certificate_der: bytes, signature: bytes | None
    ) -> VerificationResult: ...

    def wait_for_result(self, verification_id: str, wait_s: float) -> VerificationResult: ...

    def confirm(self, verification_id: str, decision: Any) -> VerificationResult: ...


class _Throttled:
    """Logs a repeated failure once, then every hundredth time (the log must not flood)."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, key: str, message: str, *args: object) -> None:
        with self._lock:
            count = self._counts.get(key, 0) + 1
            self._counts[key] = count
        if count == 1 or count % 100 == 0:
            log.error(message + " (%d times)", *args, count, exc_info=True)


_log_failure = _Throttled()


# --- jobs off the flow's thread -------------------------------------------------------------------


class _QueueWorker:
    """Runs queued jobs one at a time, in order, on a thread of its own.

    A failing job is counted and logged (throttled) under ``what``; the next one still runs.
    """

    def __init__(self, name: str, what: str, failure: str) -> None:
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._what = what
        self._failure = failure
        self.failures = 0

    def start(self) -> None:
        self._thread.start()

    def _put(self, job: Callable[[], None]) -> None:
        self._queue.put(job)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every job queued so far is done (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                job()
            except Exception:
                self.failures += 1
                _log_failure(self._what, self._failure)
            finally:
                self._queue.task_done()


class Signals(_QueueWorker):
    """Lights and buzzer driven from a thread of their own, in the order asked.

    gpiozero starts (and stops, joining) a thread for every blink and beep: done on the flow's
    thread, that work would hold up the card command and the screen that follow it. Here the
    flow only queues the request.
    """

    def __init__(self, lights: Lights, buzzer: Sounder) -> None:
        super().__init__("flow-signals", "signals", "the lights or the buzzer failed")
        self._lights = lights
        self._buzzer = buzzer

    def show(self, signal: LightSignal, *, reminder: int = 0) -> None:
        self._put(lambda: self._lights.show(signal, reminder=reminder))

    def play(self, sound: Sound) -> None:
        self._put(lambda: self._buzzer.play(sound))


# --- the journal ----------------------------------------------------------------------------------


class Journal(_QueueWorker):
    """Appends records to the outbox on a thread of its own; a failing outbox never stops the
    flow (the failure is counted and logged, throttled)."""

    def __init__(self, sink: RecordSink | None) -> None:
        super().__init__("flow-journal", "journal", "a flow record was not stored")
        self._sink = sink
        self.written = 0

    def record(self, kind: str, payload: Mapping[str, Any]) -> None:
        item = dict(payload)
        self._put(lambda: self._write(kind, item))

    def _write(self, kind: str, payload: dict[str, Any]) -> None:
        if self._sink is not None:
            self._sink.append(kind, payload)
        self.written += 1


# --- the card -------------------------------------------------------------------------------------


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


class CardWorker:
    """The card reader: presence events and card jobs, on two threads.

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
        self._post = post
        self._configured = reader
        self._active_reader = reader
        self._policy = policy
        self._connect = connect
        self._presences = presences
        self._list_readers = list_readers
        self._poll_s = poll_s
        self._jobs: queue.Queue[tuple[int | None, Callable[[], None]] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._session: int | None = None  # the session whose jobs run
        self._card: CardContext | None = None
        self._link: Link | None = None
        self._stopping = threading.Event()
        self._reader_state = "unknown"
        self._card_present = False
        self._job_thread = threading.Thread(target=self._run_jobs, name="card-jobs", daemon=True)
        self._watch_thread = threading.Thread(target=self._watch, name="card-presence", daemon=True)

    # -- life --

    def start(self) -> None:
        self._job_thread.start()
        self._watch_thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        self._presences.close()
        self._jobs.put(None)
        self._job_thread.join(timeout_s)
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
                _log_failure("presence", "watching the card reader failed")
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
            self._post(CardRemoved())
        elif kind is Presence.SERVICE_LOST:
            self._reader_state = "pcscd_gone"
            self._card_present = False
            if self._configured is None:
                self._active_reader = None
            self._post(ReaderLost("card.pcsc_gone"))

    def check_reader(self) -> None:
        """Report whether the reader is there (ReaderBack or ReaderLost), from the job thread."""
        self._jobs.put((None, self.check_reader_now))

    def check_reader_now(self) -> None:
        try:
            readers = self._list_readers()
        except CardError as exc:
            self._reader_state = "pcscd_gone" if exc.code == "card.pcsc_gone" else "absent"
            self._post(ReaderLost(exc.code))
            return
        except Exception:
            _log_failure("readers", "listing the card readers failed")
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

    def read_card(self, session: int) -> None:
        """Open the card of ``session``: token and tries left are reported at once
        (``CardRead``), then the certificate is read and kept, and the PIN file selected,
        while the patient types."""
        with self._lock:
            self._session = session
        self._jobs.put((session, lambda: self._read(session)))

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
            self._guarded(session, lambda: job(card))

        self._jobs.put((session, run))

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

        self._jobs.put((None, close))

    def _run_jobs(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            session, job = item
            with self._lock:
                skip = session is not None and session != self._session
            if skip:
                continue
            try:
                job()
            except Exception:
                _log_failure("card-job", "a card job failed")

    def _guarded(self, session: int, action: Callable[[], None]) -> None:
        try:
            action()
        except ServerError as exc:
            unreachable = isinstance(exc, ServerUnreachable) or exc.temporary
            self._post(ServerFailed(session, exc.code, unreachable))
        except KioskError as exc:
            if isinstance(exc, CardError):
                self._close_link()
            self._post(CardFailed(session, exc.code))
        except Exception:
            _log_failure("card-internal", "a card operation failed unexpectedly")
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
            self._post(
                CardRead(session, CardFacts(str(token), tries, token is Token.MYNUMBER_CARD))
            )
            # while the patient reads the screen and types: the certificate, then the PIN
            # file selected again, so the fourth digit costs one VERIFY and no SELECT
            if not jpki.needs_pin_for_certificate:
                card.certificate = jpki.read_certificate()
            if tries is not None and tries > 0:
                jpki.pin_tries_left()

        self._guarded(session, read)

    def _close_link(self) -> None:
        link, self._link = self._link, None
        self._card = None
        if link is not None:
            close = getattr(link, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()


# --- the server -----------------------------------------------------------------------------------


def answer_of(result: VerificationResult) -> Answer:
    """The few facts of a server answer the flow needs (no personal data)."""
    return Answer(
        verification_id=result.verification_id,
        awaiting_staff=result.awaiting_staff,
        patient_message=result.patient_message,
        reason_code=result.reason_code,
        validity_code=result.validity_code,
    )


@dataclass
class _Prefetched:
    nonce: bytes
    fetched_at: float
    session: int


class ServerWorker:
    """Talks to the clinic server for the flow, keeping a challenge ready per card session.

    A challenge is fetched when the card is placed (the same request opens and warms the TLS
    connection), again when it is older than ``challenge_max_age_s`` while the session lasts
    (which also keeps the connection alive), and handed out once.
    """

    def __init__(
        self,
        api: EligibilityApi,
        post: Post,
        *,
        challenge_max_age_s: float = 25.0,
        long_poll_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._post = post
        self._max_age = challenge_max_age_s
        self._long_poll_s = long_poll_s
        self._clock = clock
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._cond = threading.Condition()
        self._session: int | None = None
        self._cached: _Prefetched | None = None
        self._fetching = False
        self._pollers: dict[int, threading.Event] = {}
        self._poll_threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._run, name="server-worker", daemon=True)
        self.reachable: bool | None = None
        #: (start, end) monotonic seconds of each request, for the benchmark
        self.request_log: list[tuple[float, float, str]] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        with self._cond:
            self._session = None
            for cancel in self._pollers.values():
                cancel.set()
            self._cond.notify_all()
        self._jobs.put(None)
        self._thread.join(timeout_s)
        for thread in self._poll_threads:
            thread.join(self._long_poll_s + timeout_s)

    # -- requests, timed --

    def _timed(self, what: str, call: Callable[[], Any]) -> Any:
        start = self._clock()
        try:
            result = call()
        except ServerUnreachable:
            self.reachable = False
            raise
        except KioskError:
            raise
        except Exception as exc:  # a bug below the client: still a server failure, reported
            _log_failure("server-internal", "a server request failed unexpectedly")
            raise ServerError(f"{what}: {type(exc).__name__}") from exc
        finally:
            self.request_log.append((start, self._clock(), what))
            if len(self.request_log) > 1000:
                del self.request_log[:500]
        self.reachable = True
        return result

    # -- challenges --

    def prepare(self, session: int) -> None:
        """A card was placed: fetch a challenge now (and with it, the TLS connection)."""
        with self._cond:
            self._session = session
            if self._cached is not None and self._cached.session != session:
                self._cached = None
        self._jobs.put(lambda: self._prefetch(session))

    def _prefetch(self, session: int) -> None:
        with self._cond:
            if self._session != session or self._fetching:
                return
            cached = self._cached
            if cached is not None and self._clock() - cached.fetched_at < self._max_age:
                return
            self._fetching = True
        try:
            challenge = self._timed("challenge", self._api.challenge)
        except Exception as exc:
            with self._cond:
                self._fetching = False
                self._cached = None  # nothing to refresh: no retry loop against a dead server
                self._cond.notify_all()
            if isinstance(exc, ServerError):
                unreachable = isinstance(exc, ServerUnreachable) or exc.temporary
                self._post(ServerFailed(session, exc.code, unreachable))
            else:
                _log_failure("server-prefetch", "fetching a challenge failed unexpectedly")
                self._post(ServerFailed(session, "server", False))
            return
        with self._cond:
            self._fetching = False
            if self._session == session:
                self._cached = _Prefetched(challenge.nonce, self._clock(), session)
            self._cond.notify_all()

    def take_challenge(self, session: int, *, fresh: bool = False) -> bytes:
        """A challenge for ``session``, used once: the prefetched one if it is still fresh
        (waiting for it if it is on its way), else a new one. Raises ServerError."""
        with self._cond:
            if fresh:
                self._cached = None
            else:
                self._cond.wait_for(lambda: not self._fetching, timeout=15.0)
                cached, self._cached = self._cached, None
                if (
                    cached is not None
                    and cached.session == session
                    and self._clock() - cached.fetched_at < self._max_age
                ):
                    return cached.nonce
        challenge: Challenge = self._timed("challenge", self._api.challenge)
        return challenge.nonce

    def _refresh_due_in(self) -> float | None:
        with self._cond:
            cached = self._cached
            if self._session is None or cached is None or cached.session != self._session:
                return None
            return max(0.0, cached.fetched_at + self._max_age - self._clock())

    def _run(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=self._refresh_due_in())
            except queue.Empty:
                session = self._session
                if session is not None:
                    self._prefetch(session)
                continue
            if job is None:
                return
            try:
                job()
            except Exception:
                _log_failure("server-job", "a server job failed")

    # -- verifications --

    def verify(
        self,
        session: int,
        nonce: bytes,
        mode: Mode,
        certificate_der: bytes,
        signature: bytes | None,
    ) -> None:
        """Send the verification (on the calling thread) and post the answer."""
        result: VerificationResult = self._timed(
            "verify", lambda: self._api.verify(nonce, mode, certificate_der, signature)
        )
        self._post(ServerAnswered(session, answer_of(result)))

    def confirm(self, session: int, verification_id: str) -> None:
        """Staff pressed the kiosk's button: confirm the visual check."""

        def confirm() -> None:
            try:
                result = self._timed(
                    "confirm", lambda: self._api.confirm(verification_id, "confirmed")
                )
            except ServerRejected as exc:
                if exc.status != 409:
                    raise
                # decided already (on the dashboard): the current state is the answer
                result = self._timed(
                    "result", lambda: self._api.wait_for_result(verification_id, 0.0)
                )
            self._post(ServerAnswered(session, answer_of(result)))

        self._jobs.put(lambda: self._report(session, confirm))

    def await_decision(self, session: int, verification_id: str) -> None:
        """Long-poll until staff decide (on the dashboard, or the button's confirmation)."""
        cancel = threading.Event()
        with self._cond:
            old = self._pollers.pop(session, None)
            if old is not None:
                old.set()
            self._pollers[session] = cancel

        def poll() -> None:
            while not cancel.is_set():
                result: VerificationResult = self._timed(
                    "long-poll",
                    lambda: self._api.wait_for_result(verification_id, self._long_poll_s),
                )
                if not result.awaiting_staff:
                    if not cancel.is_set():
                        self._post(ServerAnswered(session, answer_of(result)))
                    return

        def run() -> None:
            self._report(session, poll, cancelled=cancel)

        thread = threading.Thread(target=run, name="staff-decision", daemon=True)
        self._poll_threads = [t for t in self._poll_threads if t.is_alive()]
        self._poll_threads.append(thread)
        thread.start()

    def _report(
        self,
        session: int,
        action: Callable[[], None],
        *,
        cancelled: threading.Event | None = None,
    ) -> None:
        try:
            action()
        except ServerError as exc:
            if cancelled is None or not cancelled.is_set():
                unreachable = isinstance(exc, ServerUnreachable) or exc.temporary
                self._post(ServerFailed(session, exc.code, unreachable))
        except Exception:
            _log_failure("server-internal", "a server request failed unexpectedly")
            self._post(ServerFailed(session, "server.internal", False))

    def end_session(self, session: int) -> None:
        """Drop the session's challenge and stop waiting for staff."""
        with self._cond:
            if self._session == session:
                self._session = None
            if self._cached is not None and self._cached.session == session:
                self._cached = None
            cancel = self._pollers.pop(session, None)
            if cancel is not None:
                cancel.set()
            self._cond.notify_all()
        self._jobs.put(lambda: None)  # wake the worker: its refresh timer no longer applies


# --- the loop -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Input:
    ui: UiInput


_STOP = object()
_PING = object()

Observer = Callable[[Event, FlowState, tuple[Effect, ...]], None]


class FlowRunner:
    """Steps the machine on one thread and executes its effects (see the module docstring)."""

    def __init__(
        self,
        machine: FlowMachine,
        *,
        display: PatientDisplay,
        lights: Lights,
        buzzer: Sounder,
        card: CardWorker,
        server: ServerWorker,
        journal: Journal,
        device_id: str,
        status_lines: Callable[[], Sequence[str]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.machine = machine
        self._display = display
        self.signals = Signals(lights, buzzer)
        self._card = card
        self._server = server
        self._journal = journal
        self._device_id = device_id
        self._status_lines = status_lines
        self._clock = clock
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="flow-runner", daemon=True)
        self._deadline: tuple[float, int] | None = None
        self._pin: PinEntry | None = None
        self._digit: str | None = None
        self._entered_at = clock()
        self._started = False
        self._pong = threading.Event()
        self.state: FlowState
        self.last_screen: Screen | None = None
        self.observers: list[Observer] = []
        self.steps = 0

    # -- what the outside calls (any thread) --

    def post(self, event: Event) -> None:
        self._queue.put(event)

    def on_input(self, ui: UiInput) -> None:
        """The display's callback (from the UI thread)."""
        self._queue.put(_Input(ui))

    def on_staff_press(self) -> None:
        self._queue.put(StaffButton(long=False))

    def on_staff_long_press(self) -> None:
        self._queue.put(StaffButton(long=True))

    # -- life --

    def start(self) -> None:
        """Start the journal, the workers, the display and the loop."""
        self._started = True
        self.signals.start()
        self._journal.start()
        self._server.start()
        self._display.start(self.on_input)
        self.state, effects = self.machine.initial()
        self._execute(effects)
        self._card.start()
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop, then the display and the workers; the PIN entry is wiped."""
        if not self._started:
            return
        self._started = False
        self._queue.put(_STOP)
        self._thread.join(10.0)
        self._wipe_pin()
        self._display.stop()
        self._card.stop()
        self._server.stop()
        self._journal.close()
        self.signals.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def journal(self) -> Journal:
        return self._journal

    def responsive(self, within_s: float) -> bool:
        """Whether the loop takes an item off its queue within ``within_s`` (the watchdog)."""
        self._pong.clear()
        self._queue.put(_PING)
        return self._pong.wait(within_s)

    def shown(self, *screen_ids: ScreenId) -> bool:
        """Whether the screen last shown is one of ``screen_ids``."""
        return self.last_screen is not None and self.last_screen.id in screen_ids

    # -- the loop --

    def _run(self) -> None:
        while True:
            timeout = None
            if self._deadline is not None:
                timeout = max(0.0, self._deadline[0] - self._clock())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                assert self._deadline is not None
                item = TimerFired(self._deadline[1])
                self._deadline = None
            if item is _STOP:
                return
            if item is _PING:
                self._pong.set()
                continue
            event = self._event_of(item)
            if event is None:
                continue
            try:
                self._step(event)
            except Exception:
                _log_failure("runner-step", "the flow could not take a step")
            finally:
                self._digit = None

    def _event_of(self, item: object) -> Event | None:
        if not isinstance(item, _Input):
            return item  # type: ignore[return-value]
        ui = item.ui
        if ui.action is UiAction.DIGIT:
            value = ui.value
            if value is None or len(value) != 1 or value not in "0123456789":
                return None
            self._digit = value
            return Pressed(UiAction.DIGIT)
        if ui.action is UiAction.SET_LANGUAGE:
            try:
                return Pressed(ui.action, Language(ui.value or ""))
            except ValueError:
                return None
        return Pressed(ui.action)

    def _step(self, event: Event) -> None:
        old = self.state
        self.state, effects = self.machine.step(old, event)
        self.steps += 1
        self._execute(effects)
        for observer in self.observers:
            observer(event, self.state, effects)

    def _execute(self, effects: Sequence[Effect]) -> None:
        for effect in effects:
            try:
                self._do(effect)
            except Exception:
                _log_failure(f"effect-{type(effect).__name__}", "an effect failed")

    def _do(self, effect: Effect) -> None:
        if isinstance(effect, ShowScreen):
            screen = self._decorated(effect.screen)
            self.last_screen = screen
            self._display.show(screen)
        elif isinstance(effect, SetLights):
            self.signals.show(effect.signal, reminder=effect.reminder)
        elif isinstance(effect, PlaySound):
            self.signals.play(effect.sound)
        elif isinstance(effect, StartTimer):
            self._deadline = (self._clock() + effect.seconds, effect.generation)
        elif isinstance(effect, Record):
            payload: dict[str, Any] = effect.payload
            if effect.kind == "flow.transition":
                now = self._clock()
                payload["ms"] = round((now - self._entered_at) * 1000)
                self._entered_at = now
            self._journal.record(effect.kind, payload)
        elif isinstance(effect, ReadCard):
            self._card.read_card(effect.session)
        elif isinstance(effect, PrepareServer):
            self._server.prepare(effect.session)
        elif isinstance(effect, NewPinEntry):
            self._wipe_pin()
            self._pin = self._card.pin_entry(effect.session)
        elif isinstance(effect, AcceptDigit):
            if self._pin is not None and self._digit is not None:
                self._pin.type_digit(self._digit)
        elif isinstance(effect, EraseDigit):
            if self._pin is not None:
                self._pin.erase()
        elif isinstance(effect, ClearPin):
            self._wipe_pin()
        elif isinstance(effect, VerifyPin):
            entry, self._pin = self._pin, None
            if entry is None:
                self.post(CardFailed(effect.session, "card.removed"))
            else:
                self._card.verify_pin(effect.session, entry)
        elif isinstance(effect, SignAndSend):
            self._card.run_job(effect.session, self._sign_and_send(effect))
        elif isinstance(effect, AwaitStaffDecision):
            self._server.await_decision(effect.session, effect.verification_id)
        elif isinstance(effect, ConfirmVisual):
            self._server.confirm(effect.session, effect.verification_id)
        elif isinstance(effect, CheckReader):
            self._card.check_reader()
        elif isinstance(effect, EndSession):
            self._wipe_pin()
            self._card.end_session(effect.session)
            self._server.end_session(effect.session)

    def _sign_and_send(self, effect: SignAndSend) -> CardJob:
        server, device_id = self._server, self._device_id

        def job(card: CardContext) -> None:
            certificate = card.certificate_der()
            nonce = server.take_challenge(effect.session, fresh=effect.fresh_challenge)
            signature = None
            if effect.mode == "pin":
                signature = card.jpki.sign(signed_message(nonce, device_id, "pin"))
            server.verify(effect.session, nonce, effect.mode, certificate, signature)

        return job

    def _wipe_pin(self) -> None:
        entry, self._pin = self._pin, None
        if entry is not None:
            entry.clear()

    def _decorated(self, screen: Screen) -> Screen:
        if screen.id is not ScreenId.STAFF_MODE or self._status_lines is None:
            return screen
        try:
            lines = tuple(self._status_lines())
        except Exception:
            lines = ("status unavailable",)
        return replace(screen, staff_lines=lines)
