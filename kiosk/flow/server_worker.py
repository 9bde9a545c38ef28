"""The clinic server, for the flow: challenges kept ready, verifications, staff decisions.

The server worker (a :class:`~kiosk.flow.queue_worker.QueueWorker`) prefetches a challenge
when a card is placed (which also opens the TLS connection), refreshes it while it would go
stale (the queue's idle wait is the refresh timer: no timer thread), and long-polls the server
on a thread of its own while staff decide a visual check. A failing request is reported as
``ServerFailed``; a hanging one is caught by the flow state's own timeout.

It also reports staff calls (``POST /staff-calls``): each report is kept until the server has
it, and sent again every ``call_retry_s`` seconds (the same idle wait) while the server cannot
be reached. A call that never reached the server before the kiosk cleared it still goes, as
*late*: the patient was sent to the desk, so staff see it until they mark it handled.
Undelivered reports live in memory only: a kiosk restart drops them (the outbox keeps the
visit's records).
"""

from __future__ import annotations

import functools
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from contract.challenge import Mode
from kiosk.clinic_client import Challenge, VerificationResult
from kiosk.errors import KioskError, ServerError, ServerRejected, ServerUnreachable
from kiosk.flow.effects import CallStaff
from kiosk.flow.events import Answer, ConfirmRefused, Event, ServerAnswered, ServerFailed
from kiosk.flow.queue_worker import QueueWorker

Post = Callable[[Event], None]


class EligibilityApi(Protocol):
    """What the flow asks the clinic server (:class:`~kiosk.clinic_client.ClinicClient`)."""

    def challenge(self) -> Challenge: ...

    def verify(
        self, nonce: bytes, mode: Mode, certificate_der: bytes, signature: bytes | None
    ) -> VerificationResult: ...

    def wait_for_result(self, verification_id: str, wait_s: float) -> VerificationResult: ...

    def confirm(self, verification_id: str, decision: Any) -> VerificationResult: ...

    def staff_call(self, report: dict[str, Any]) -> None: ...


def answer_of(result: VerificationResult) -> Answer:
    """The few facts of a server answer the flow needs (no personal data)."""
    return Answer(
        verification_id=result.verification_id,
        awaiting_staff=result.awaiting_staff,
        patient_message=result.patient_message,
        reason_code=result.reason_code,
        validity_code=result.validity_code,
        copay_percent=result.copay_percent,
    )


def server_failed(session: int, exc: ServerError) -> ServerFailed:
    """The event for a failed server request: unreachable (try again later) or refused."""
    unreachable = isinstance(exc, ServerUnreachable) or exc.temporary
    return ServerFailed(session, exc.code, unreachable)


@dataclass
class _Prefetched:
    nonce: bytes
    fetched_at: float
    session: int


@dataclass
class _Call:
    """A staff call the server has not heard all of yet."""

    call: CallStaff
    #: the server took the open report
    delivered: bool = False
    #: the screen no longer says staff were called
    cleared: bool = False
    #: raised while the server could not be reached (or cleared before it could): staff clear
    late: bool = False

    @property
    def finished(self) -> bool:
        """Nothing left to tell: cleared before a first try, or delivered late (staff clear)."""
        if self.delivered:
            return self.late
        return self.cleared and not self.late

    def report(self, boot: str) -> dict[str, Any] | None:
        """The report to send next, or None when there is nothing to send now."""
        if self.finished or (self.delivered and not self.cleared):
            return None
        call = self.call
        return {
            "key": f"{boot}-{call.visit}",
            "state": "cleared" if self.delivered else "open",
            "visit": call.visit,
            "reason": call.reason,
            "notice": call.notice.number if call.notice is not None else None,
            "verification_id": call.verification_id,
            "late": self.late,
        }


class ServerWorker(QueueWorker):
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
        call_retry_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__("server-worker", "server-job", "a server job failed")
        self._api = api
        self._post = post
        self._max_age = challenge_max_age_s
        self._long_poll_s = long_poll_s
        self._clock = clock
        self._cond = threading.Condition()
        self._session: int | None = None
        self._cached: _Prefetched | None = None
        self._fetching = False
        self._pollers: dict[int, threading.Event] = {}
        self._poll_threads: list[threading.Thread] = []
        self.reachable: bool | None = None
        self._call_retry_s = call_retry_s
        #: names this run's calls: the server takes (kiosk, key) as one call
        self._boot = secrets.token_hex(4)
        #: staff call reports not yet taken by the server, by visit number
        self._calls: dict[int, _Call] = {}
        self._calls_retry_at: float | None = None
        #: (start, end) monotonic seconds of each request, for the benchmark
        self.request_log: list[tuple[float, float, str]] = []

    def stop(self, timeout_s: float = 15.0) -> None:
        with self._cond:
            self._session = None
            for cancel in self._pollers.values():
                cancel.set()
            self._cond.notify_all()
        self.close(timeout_s)
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
            self._log_failure("server-internal", "a server request failed unexpectedly")
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
        self._put(lambda: self._prefetch(session))

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
                self._post(server_failed(session, exc))
            else:
                self._log_failure("server-prefetch", "fetching a challenge failed unexpectedly")
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

    def _idle_timeout(self) -> float | None:
        """Until the session's challenge goes stale or undelivered staff calls are due again
        (then :meth:`_on_idle` refreshes or resends)."""
        with self._cond:
            waits: list[float] = []
            if self._calls_retry_at is not None:
                waits.append(max(0.0, self._calls_retry_at - self._clock()))
            cached = self._cached
            if self._session is not None and cached is not None and cached.session == self._session:
                waits.append(max(0.0, cached.fetched_at + self._max_age - self._clock()))
            return min(waits) if waits else None

    def _on_idle(self) -> None:
        retry_at = self._calls_retry_at
        if retry_at is not None and self._clock() >= retry_at:
            self._send_calls()
        session = self._session
        if session is not None:
            self._prefetch(session)

    # -- staff calls --

    def call_staff(self, call: CallStaff) -> None:
        """The kiosk's screen says staff were called: tell the server (until it has it)."""
        with self._cond:
            self._calls[call.visit] = _Call(call)
        self._put(self._send_calls)

    def clear_staff_call(self, visit: int) -> None:
        """The screen no longer says so: the call clears. One the server could not be told of
        yet still goes (late), for staff to clear; one cleared before its first try does not."""
        with self._cond:
            pending = self._calls.get(visit)
            if pending is None:
                return
            pending.cleared = True
            if pending.finished:
                del self._calls[visit]
        self._put(self._send_calls)

    def pending_calls(self) -> int:
        """Staff calls with a report the server has not taken yet."""
        with self._cond:
            return sum(1 for call in self._calls.values() if call.report(self._boot) is not None)

    def _send_calls(self) -> None:
        while True:
            with self._cond:
                due = [(v, c.report(self._boot)) for v, c in sorted(self._calls.items())]
                work = [(v, r) for v, r in due if r is not None]
                if not work:
                    self._calls_retry_at = None
                    return
                visit, report = work[0]
            try:
                self._timed("staff-call", functools.partial(self._api.staff_call, report))
            except ServerError as exc:
                if isinstance(exc, ServerUnreachable) or exc.temporary:
                    with self._cond:
                        call = self._calls.get(visit)
                        if call is not None and not call.delivered:
                            call.late = True
                        self._calls_retry_at = self._clock() + self._call_retry_s
                    return
                # refused for good (a report this server cannot take): logged and dropped
                self._log_failure("server-staff-call", "the server refused a staff call")
                with self._cond:
                    self._calls.pop(visit, None)
                continue
            with self._cond:
                call = self._calls.get(visit)
                if call is None:
                    continue
                if report["state"] == "open":
                    call.delivered = True
                if report["state"] == "cleared" or call.finished:
                    del self._calls[visit]

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
                if exc.status == 403:
                    # the clinic confirms on the dashboard (or this button is over its
                    # rate): staff are called; the long-poll brings their decision
                    self._post(ConfirmRefused(session))
                    return
                if exc.status != 409:
                    raise
                # decided already (on the dashboard): the current state is the answer
                result = self._timed(
                    "result", lambda: self._api.wait_for_result(verification_id, 0.0)
                )
            self._post(ServerAnswered(session, answer_of(result)))

        self._put(lambda: self._report(session, confirm))

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
                self._post(server_failed(session, exc))
        except Exception:
            self._log_failure("server-internal", "a server request failed unexpectedly")
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
        self._put(lambda: None)  # wake the worker: its refresh timer no longer applies
