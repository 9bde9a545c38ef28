"""The machine as a whole: its one initial state, its table checked when it is defined, and the
rules that hold in every state (stale events ignored, a lost reader, staff mode, the log)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from contract.errors import OnshiError
from kiosk.errors import FlowDefinitionError, KioskError
from kiosk.flow import states
from kiosk.flow.effects import CheckReader, EndSession, SetLights, ShowScreen, StartTimer
from kiosk.flow.events import (
    CardInserted,
    CardLifted,
    CardRead,
    Event,
    Pressed,
    ReaderBack,
    ReaderLost,
    ServerFailed,
    StaffButtonPressed,
    TimerFired,
)
from kiosk.flow.machine import FlowMachine, Handler, check_table
from kiosk.flow.moves import Moves, Step
from kiosk.flow.screens import Language, ScreenId, UiAction
from kiosk.flow.states import (
    STATE_TYPES,
    CardSession,
    ChoosingLanguage,
    Concluded,
    EnteringPin,
    FlowState,
    Idle,
    NoCardHelp,
    ReaderMissing,
    StaffMode,
    TakeCard,
)
from kiosk.hw.signals import LightSignal
from tests.support.machine import MYNUMBER, Driver, records


def test_the_one_initial_state_is_idle_in_japanese_with_a_timer() -> None:
    driver = Driver()
    assert driver.state == Idle()
    assert driver.last == (
        StartTimer(300.0, 0),
        ShowScreen(driver.last[1].screen),
        SetLights(LightSignal.READY),
    )
    assert driver.last[1].screen.language is Language.JA


# --- the table, checked when the machine is defined --------------------------------------------


def define(name: str, **table: object) -> type[FlowMachine]:
    """Define a machine as a class statement would, with its own ``states`` or ``handlers``."""
    return type(name, (FlowMachine,), table)


def handlers_without(*removed: type[FlowState]) -> dict[type[FlowState], Handler]:
    return {s: h for s, h in FlowMachine.handlers.items() if s not in removed}


def stay(moves: Moves, state: FlowState, event: Event) -> Step:
    return state, ()


def test_the_flow_machine_is_well_defined_and_starts_in_idle() -> None:
    assert check_table("FlowMachine", FlowMachine.states, FlowMachine.handlers) is Idle
    assert FlowMachine.initial_state is Idle
    assert set(FlowMachine.handlers) == set(FlowMachine.states) == set(STATE_TYPES)


def test_every_concrete_state_class_is_in_the_table() -> None:
    concrete = {
        value
        for value in vars(states).values()
        if isinstance(value, type) and issubclass(value, FlowState) and hasattr(value, "screen_id")
    }
    assert concrete == set(FlowMachine.states)


def test_a_state_without_a_handler_is_refused_when_the_machine_is_defined() -> None:
    with pytest.raises(FlowDefinitionError, match=r"no handler for TakeCard$"):
        define("Forgetful", handlers=handlers_without(TakeCard))


def test_two_initial_states_are_refused() -> None:
    @dataclass(frozen=True, kw_only=True)
    class AlsoStart(ChoosingLanguage):
        initial = True

    with pytest.raises(FlowDefinitionError, match=r"2 initial states \(AlsoStart, Idle\)"):
        define(
            "TwoStarts",
            states=tuple(AlsoStart if s is ChoosingLanguage else s for s in STATE_TYPES),
            handlers={**handlers_without(ChoosingLanguage), AlsoStart: stay},
        )


def test_no_initial_state_is_refused() -> None:
    with pytest.raises(FlowDefinitionError, match="no initial state"):
        define(
            "NoStart",
            states=tuple(s for s in STATE_TYPES if s is not Idle),
            handlers=handlers_without(Idle),
        )


@pytest.mark.parametrize("stranger", [CardSession, Concluded, FlowState])
def test_a_handler_for_a_state_the_machine_does_not_have_is_refused(
    stranger: type[FlowState],
) -> None:
    problem = f"a handler for {stranger.__name__}, which is not one of its states"
    with pytest.raises(FlowDefinitionError, match=problem):
        define("Stranger", handlers={**FlowMachine.handlers, stranger: stay})


def test_abstract_listed_twice_or_shared_screens_are_refused() -> None:
    @dataclass(frozen=True, kw_only=True)
    class Twin(FlowState):
        screen_id = ScreenId.IDLE

    with pytest.raises(FlowDefinitionError) as caught:
        define(
            "Muddled",
            states=(*STATE_TYPES, Concluded, Idle, Twin),
            handlers={**FlowMachine.handlers, Concluded: stay, Twin: stay},
        )
    message = str(caught.value)
    assert "Concluded is not a concrete state (it has no screen)" in message
    assert "Idle is listed twice" in message
    assert "Idle and Twin share a screen" in message


def test_the_error_belongs_to_the_kiosk_and_names_every_problem() -> None:
    with pytest.raises(FlowDefinitionError) as caught:
        define(
            "Broken",
            states=tuple(s for s in STATE_TYPES if s is not Idle),
            handlers={**handlers_without(TakeCard), CardSession: stay},
        )
    error = caught.value
    assert isinstance(error, KioskError)
    assert isinstance(error, OnshiError)
    assert error.code == "flow.definition"
    assert str(error) == (
        "Broken is badly defined: no handler for TakeCard; "
        "no initial state (one state class must set initial = True); "
        "a handler for Idle, which is not one of its states; "
        "a handler for CardSession, which is not one of its states"
    )


def test_a_well_defined_machine_of_its_own_is_accepted() -> None:
    quiet = define("Quiet", handlers={**FlowMachine.handlers, NoCardHelp: stay})
    assert quiet.initial_state is Idle
    driver = Driver(quiet())
    driver.send(Pressed(UiAction.NO_CARD))
    assert isinstance(driver.state, NoCardHelp)
    driver.timeout()
    assert isinstance(driver.state, NoCardHelp), "its own handler, not FlowMachine's"


# --- rules that hold in every state ------------------------------------------------------------


def test_events_of_an_earlier_card_are_ignored() -> None:
    driver = Driver()
    driver.send(CardInserted())
    old = driver.state.session
    driver.send(CardLifted(), CardInserted())
    assert driver.state.session == old + 1
    before = driver.state
    driver.send(CardRead(old, MYNUMBER))
    driver.send(ServerFailed(old, "server.unreachable", True))
    assert driver.state == before


def test_a_timer_of_an_earlier_state_is_ignored() -> None:
    driver = Driver()
    driver.read()
    stale = driver.state.timer
    driver.digits(1)
    driver.send(TimerFired(stale))
    assert isinstance(driver.state, EnteringPin)
    assert driver.last == ()


def test_a_lost_reader_shows_in_any_state_and_its_return_goes_idle() -> None:
    driver = Driver()
    driver.read()
    driver.digits(2)
    session = driver.state.session
    driver.send(ReaderLost("card.pcsc_gone"))
    assert isinstance(driver.state, ReaderMissing)
    assert EndSession(session) in driver.last
    driver.timeout()
    assert CheckReader() in driver.last
    driver.send(ReaderBack())
    assert isinstance(driver.state, Idle)


def test_a_long_press_opens_staff_mode_from_anywhere_and_wipes_the_session() -> None:
    driver = Driver()
    driver.read()
    driver.digits(3)
    session = driver.state.session
    driver.send(StaffButtonPressed(long=True))
    assert isinstance(driver.state, StaffMode)
    assert driver.state.card_present
    assert EndSession(session) in driver.last
    assert SetLights(LightSignal.OFF) in driver.last
    driver.send(CardLifted())
    driver.send(Pressed(UiAction.STAFF_EXIT))
    assert isinstance(driver.state, Idle)
    assert CheckReader() in driver.last
    assert [r["action"] for r in records(driver, "staff.action")] == [
        "staff_mode_open",
        "staff_mode_exit",
    ]


def test_transitions_are_logged_with_a_reason_and_never_a_digit() -> None:
    driver = Driver()
    driver.read()
    driver.digits(4)
    transitions = records(driver, "flow.transition")
    assert transitions == [
        {"from": "idle", "to": "reading", "reason": "card.inserted"},
        {"from": "reading", "to": "pin_entry", "reason": "card.read"},
        {"from": "pin_entry", "to": "checking", "reason": "pin.complete"},
    ]
    assert records(driver, "card.read") == [
        {"token": "mynumber_card", "tries_left": 3, "has_pin": True}
    ]
