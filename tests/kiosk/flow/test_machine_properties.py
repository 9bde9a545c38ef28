"""Random event sequences: the machine never raises and its safety rules always hold."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.flow.effects import (
    AcceptDigit,
    ClearPin,
    EndSession,
    EraseDigit,
    NewPinEntry,
    Record,
    SetLights,
    ShowScreen,
    StartTimer,
    VerifyPin,
)
from kiosk.flow.events import Event, Pressed, ServerAnswered, TimerFired
from kiosk.flow.machine import FlowMachine
from kiosk.flow.screens import Language, UiAction
from kiosk.flow.settings import FlowSettings
from kiosk.flow.states import (
    STATE_TYPES,
    CardSession,
    ChoosingLanguage,
    Concluded,
    EnteringPin,
    FlowState,
    Idle,
    ReadingCard,
    RemovedEarly,
    TakeCard,
)
from kiosk.flow.views import screen_of
from kiosk.hw.signals import LightSignal
from tests.support.machine import events_for

# An event is picked as an index into the events that make sense for the current state, with a
# few twists: a stale session, a stale timer.
choices = st.lists(
    st.tuples(st.integers(0, 200), st.sampled_from(["fresh", "stale_session", "stale_timer"])),
    max_size=120,
)


def pick(state: FlowState, index: int, twist: str) -> Event:
    events = list(events_for(state))
    event = events[index % len(events)]
    if twist == "stale_session" and hasattr(event, "session"):
        return type(event)(**{**event.__dict__, "session": state.session - 1})  # type: ignore[arg-type]
    if twist == "stale_timer" and isinstance(event, TimerFired):
        return TimerFired(state.timer - 1)
    return event


class PinModel:
    """What the runner's PinEntry holds, rebuilt from the effects alone."""

    def __init__(self) -> None:
        self.digits = 0
        self.sent = False

    def apply(self, effect: object) -> None:
        if isinstance(effect, NewPinEntry):
            self.digits, self.sent = 0, False
        elif isinstance(effect, ClearPin | EndSession):
            self.digits = 0
        elif isinstance(effect, AcceptDigit):
            assert not self.sent
            self.digits = min(4, self.digits + 1)
        elif isinstance(effect, EraseDigit):
            assert self.digits > 0
            self.digits -= 1


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(choices, st.integers(1, 3))
def test_random_sequences_keep_every_rule(steps: list[tuple[int, str]], floor: int) -> None:
    machine = FlowMachine(FlowSettings(pin_floor=floor))
    state, effects = machine.initial()
    pin = PinModel()
    for index, twist in steps:
        event = pick(state, index, twist)
        old = state
        state, effects = machine.step(old, event)

        assert type(state) in STATE_TYPES
        screen_of(state)

        # a digit outside PIN entry does nothing at all
        digit = isinstance(event, Pressed) and event.action is UiAction.DIGIT
        if digit and not isinstance(old, EnteringPin):
            assert state == old
            assert effects == ()

        for effect in effects:
            if isinstance(effect, VerifyPin):
                # only the fourth digit of this PIN entry, above the floor, once
                assert isinstance(old, EnteringPin)
                assert old.digits == 3
                assert old.tries_left is not None
                assert old.tries_left >= floor
                assert effect.session == old.session == state.session
                assert pin.digits == 4, "VerifyPin before four digits were typed"
                assert not pin.sent, "a PIN entry is sent once"
                pin.sent = True
            else:
                pin.apply(effect)
            if isinstance(effect, Record):
                assert all(not isinstance(v, float) for v in effect.payload.values())
                assert "pin" not in effect.payload

        if isinstance(event, ServerAnswered):
            assert not any(isinstance(e, VerifyPin) for e in effects), "never re-send a PIN"

        if type(state) is not type(old) or state.timer != old.timer:
            assert StartTimer in {type(e) for e in effects}
            timers = [e for e in effects if isinstance(e, StartTimer)]
            assert timers[-1].generation == state.timer
        if type(state) is not type(old):
            assert ShowScreen(screen_of(state)) in effects

        # leaving a card session wipes it
        if isinstance(old, CardSession) and not isinstance(state, CardSession):
            assert EndSession(old.session) in effects
            assert pin.digits == 0

        # the language is Japanese again after each patient
        if isinstance(state, Idle) and not isinstance(old, Idle | ChoosingLanguage):
            assert state.language is Language.JA
        if isinstance(state, ReadingCard) and isinstance(old, Concluded | TakeCard):
            assert state.language is Language.JA

        # green means eligible and nothing else
        for effect in effects:
            if isinstance(effect, SetLights) and effect.signal is LightSignal.ELIGIBLE:
                assert type(state).__name__ == "ResultOk"

        if isinstance(old, CardSession) and isinstance(state, RemovedEarly):
            assert state.language is old.language
