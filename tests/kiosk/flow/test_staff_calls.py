"""Staff calls in the pure machine: every screen that says staff were called emits
``CallStaff`` (with the short number its screen shows), and leaving it emits ``ClearStaffCall``
for that number - the runner reports both to the clinic server."""

from __future__ import annotations

from kiosk.flow.effects import CallStaff, ClearStaffCall, EndSession, SetLights, ShowScreen
from kiosk.flow.events import (
    Answer,
    CardFacts,
    CardLifted,
    PinAccepted,
    Pressed,
    ReaderBack,
    ReaderLost,
    ServerFailed,
)
from kiosk.flow.notices import Notice
from kiosk.flow.screens import ScreenId, UiAction
from kiosk.flow.states import (
    Idle,
    NeedsStaff,
    OfflineNotice,
    ReaderMissing,
    ResultOk,
    TakeCard,
    VisualCheckWait,
)
from kiosk.flow.views import STAFF_TOLD_LEVEL, screen_of, staff_call_of
from kiosk.hw.signals import LightSignal
from tests.kiosk.flow.test_machine_table import SEEN
from tests.support.machine import ELIGIBLE, VID, Driver


def calls(driver: Driver) -> list[CallStaff | ClearStaffCall]:
    return [e for e in driver.last if isinstance(e, CallStaff | ClearStaffCall)]


def test_no_card_calls_staff_with_a_number_on_the_screen_and_idle_clears_it() -> None:
    driver = Driver()
    driver.send(Pressed(UiAction.NO_CARD))
    assert calls(driver) == [CallStaff(1, "no_card", Notice.NO_CARD)]
    screen = driver.of_type(ShowScreen)[0].screen
    assert (screen.id, screen.notice, screen.visit) == (ScreenId.NO_CARD_HELP, Notice.NO_CARD, 1)
    driver.timeout()
    assert isinstance(driver.state, Idle)
    assert calls(driver) == [ClearStaffCall(1)]
    assert driver.of_type(ShowScreen)[0].screen.visit is None
    driver.send(Pressed(UiAction.NO_CARD))
    assert calls(driver) == [CallStaff(2, "no_card", Notice.NO_CARD)], "each call its number"


def test_a_notice_after_the_check_names_its_verification_and_lasts_while_the_card_waits() -> None:
    driver = Driver()
    driver.read()
    driver.digits(4)
    driver.send(PinAccepted(driver.state.session))
    driver.answer(Answer(VID, False, "see_staff.not_found", "national.not_found", 4))
    assert isinstance(driver.state, NeedsStaff)
    assert calls(driver) == [CallStaff(1, "notice", Notice.NOT_FOUND, VID)]
    driver.timeout()  # the card stays: the take-card screen keeps the notice and the call
    assert isinstance(driver.state, TakeCard)
    assert calls(driver) == []
    assert driver.of_type(ShowScreen)[0].screen.visit == 1
    driver.send(CardLifted())
    assert isinstance(driver.state, NeedsStaff)
    assert calls(driver) == []
    driver.timeout()
    assert isinstance(driver.state, Idle)
    assert calls(driver) == [ClearStaffCall(1)]


def test_a_card_left_after_a_good_result_calls_staff_from_the_level_that_says_so() -> None:
    driver = Driver()
    driver.read()
    driver.digits(4)
    driver.send(PinAccepted(driver.state.session))
    driver.answer(ELIGIBLE)
    assert calls(driver) == []
    levels = []
    while not calls(driver):
        driver.timeout()
        assert isinstance(driver.state, TakeCard)
        levels.append(driver.state.reminder_level)
        assert driver.of_type(SetLights)[0].signal is LightSignal.STAFF_NEEDED, "amber, never green"
    assert levels[-1] == STAFF_TOLD_LEVEL
    assert all(level < STAFF_TOLD_LEVEL for level in levels[:-1])
    assert calls(driver) == [CallStaff(1, "card_left")]
    driver.timeout()  # the reminder repeats: the same call
    assert calls(driver) == []
    driver.send(CardLifted())
    assert isinstance(driver.state, ResultOk)
    assert calls(driver) == [ClearStaffCall(1)]


def test_the_reader_missing_calls_staff_until_it_is_back() -> None:
    driver = Driver()
    driver.send(ReaderLost())
    assert isinstance(driver.state, ReaderMissing)
    assert calls(driver) == [CallStaff(1, "reader_missing", Notice.READER_MISSING)]
    driver.timeout()  # still missing: the same call
    assert calls(driver) == []
    driver.send(ReaderBack())
    assert calls(driver) == [ClearStaffCall(1)]


def test_a_server_out_of_reach_calls_staff() -> None:
    driver = Driver()
    driver.read()
    driver.digits(4)
    driver.send(PinAccepted(driver.state.session))
    driver.send(ServerFailed(driver.state.session, "server.unreachable", True))
    assert isinstance(driver.state, OfflineNotice)
    assert calls(driver) == [CallStaff(1, "server_unreachable", Notice.SERVER_UNREACHABLE)]


def test_the_patient_pressing_call_staff_on_the_pin_pad_ends_the_session_and_calls() -> None:
    driver = Driver()
    driver.read()
    driver.digits(2)
    session = driver.state.session
    driver.send(Pressed(UiAction.CALL_STAFF))
    assert isinstance(driver.state, NeedsStaff)
    assert EndSession(session) in driver.last, "the digits typed are wiped"
    assert calls(driver) == [CallStaff(1, "patient", Notice.NO_CARD)]


def test_a_visual_check_waiting_calls_staff_with_why_and_their_decision_clears_it() -> None:
    driver = Driver()
    driver.read(CardFacts("mynumber_card", 0, True))
    driver.send(Pressed(UiAction.CHOOSE_VISUAL))
    assert calls(driver) == []
    driver.answer(Answer(VID, True, "wait_staff", "visual.awaiting_staff"))
    assert isinstance(driver.state, VisualCheckWait)
    assert calls(driver) == [CallStaff(1, "visual_check", Notice.PIN_LOCKED, VID)]
    driver.timeout()  # staff called again: still the same call
    assert calls(driver) == []
    driver.answer(ELIGIBLE)
    assert isinstance(driver.state, ResultOk)
    assert calls(driver) == [ClearStaffCall(1)]


def test_the_visual_check_says_why_for_a_pinless_card_and_one_at_the_floor() -> None:
    for facts, why in (
        (CardFacts("mynumber_card", None, True), Notice.NO_PIN),
        (CardFacts("mynumber_card", 1, True), Notice.PIN_AT_FLOOR),
    ):
        driver = Driver()
        driver.read(facts)
        driver.send(Pressed(UiAction.CHOOSE_VISUAL))
        driver.answer(Answer(VID, True, "wait_staff", "visual.awaiting_staff"))
        assert calls(driver) == [CallStaff(1, "visual_check", why, VID)]


def test_every_reachable_screen_that_calls_staff_shows_its_number_and_no_other_does() -> None:
    calling = 0
    for state in SEEN.values():
        screen = screen_of(state)
        if staff_call_of(state) is None:
            assert screen.visit is None, state
        else:
            calling += 1
            assert screen.visit == state.visit, state
            assert state.visit >= 1, f"a calling screen without a call: {state}"
    assert calling > 10
