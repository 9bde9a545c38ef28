"""Runs the verification flow: executes the machine's effects, feeds their results back.

Threads, each with one job, none of them deciding anything (the machine decides):

* the **runner loop** (:class:`FlowRunner`, here) blocks on its event queue; the one pending
  timeout is the queue's wait (no timer thread, no polling: idle CPU is near zero). It steps
  the machine and executes the effects in order: screen, lights, buzzer, timer, PIN entry, and
  hands card and server work to the workers;
* the **card worker** (:class:`~kiosk.flow.card_worker.CardWorker`) watches the reader and
  runs card jobs: open the card, VERIFY, sign;
* the **server worker** (:class:`~kiosk.flow.server_worker.ServerWorker`) keeps a challenge
  ready and sends verifications, confirmations and long-polls;
* the **signals** (:class:`Signals`, here) drive the lights and the buzzer, and the
  **journal** (:class:`~kiosk.flow.journal.Journal`) appends records to the outbox (an fsync
  each), both off the critical path.

Every worker is a :class:`~kiosk.flow.queue_worker.QueueWorker`. A worker that fails reports an
event (``CardFailed``, ``ServerFailed``); a worker that hangs is caught by the state's own
timeout. The flow is never stuck.

PIN digits: a DIGIT touch reaches the loop with its value, which the loop keeps for exactly one
step and types into the session's :class:`~kiosk.card.jpki.PinEntry` if - and only if - the
machine answers :class:`AcceptDigit`. The digit is never in an event, an effect or a record.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from contract.challenge import signed_message
from kiosk.card.jpki import PinEntry
from kiosk.flow.card_worker import CardContext, CardJob, CardWorker
from kiosk.flow.certificate import expiry_of, today_in_japan
from kiosk.flow.effects import (
    AcceptDigit,
    AwaitStaffDecision,
    CallStaff,
    CheckReader,
    ClearPin,
    ClearStaffCall,
    ConfirmVisual,
    Effect,
    EndSession,
    EraseDigit,
    NewPinEntry,
    PlaySound,
    PrepareServer,
    ReadCard,
    Record,
    SetLights,
    ShowScreen,
    SignAndSend,
    StartTimer,
    VerifyPin,
)
from kiosk.flow.events import (
    CardFailed,
    CertificateDates,
    Event,
    Pressed,
    StaffButtonPressed,
    TimerFired,
)
from kiosk.flow.journal import Journal
from kiosk.flow.machine import FlowMachine
from kiosk.flow.queue_worker import QueueWorker, ThrottledLog
from kiosk.flow.screens import Language, PatientDisplay, Screen, ScreenId, UiAction, UiInput
from kiosk.flow.server_worker import ServerWorker
from kiosk.flow.states import FlowState
from kiosk.hw.signals import LightSignal, Sound

log = logging.getLogger(__name__)

_log_failure = ThrottledLog(log)


# --- lights and buzzer ----------------------------------------------------------------------------


class Lights(Protocol):
    def show(self, signal: LightSignal, *, reminder: int = 0) -> None: ...


class Sounder(Protocol):
    def play(self, sound: Sound) -> None: ...


class Signals(QueueWorker):
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
        #: the last numbered notice shown (``K-201``) and when (wall clock), for the heartbeat
        self.last_notice: tuple[str, float] | None = None
        self.observers: list[Observer] = []
        self.steps = 0

    # -- what the outside calls (any thread) --

    def post(self, event: Event) -> None:
        self._queue.put(event)

    def on_input(self, ui: UiInput) -> None:
        """The display's callback (from the UI thread)."""
        self._queue.put(_Input(ui))

    def on_staff_press(self) -> None:
        self._queue.put(StaffButtonPressed(long=False))

    def on_staff_long_press(self) -> None:
        self._queue.put(StaffButtonPressed(long=True))

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
            shown = self.last_screen
            if screen.notice is not None and (shown is None or shown.notice != screen.notice):
                self.last_notice = (screen.notice.code, time.time())
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
        elif isinstance(effect, CallStaff):
            self._server.call_staff(effect)
        elif isinstance(effect, ClearStaffCall):
            self._server.clear_staff_call(effect.visit)
        elif isinstance(effect, EndSession):
            self._wipe_pin()
            self._card.end_session(effect.session)
            self._server.end_session(effect.session)

    def _sign_and_send(self, effect: SignAndSend) -> CardJob:
        server, device_id = self._server, self._device_id

        def job(card: CardContext) -> None:
            certificate = card.certificate_der()
            expiry = expiry_of(certificate, today_in_japan())
            self.post(CertificateDates(effect.session, expiry))  # for the result screen
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
