"""A card session, one behaviour at a time: the card read, the PIN, the visual check, the
server's answer, a card lifted or failing before the end (the pure machine: no I/O, no clock)."""

from __future__ import annotations

import pytest

from kiosk.flow.effects import (
    AcceptDigit,
    AwaitStaffDecision,
    ClearPin,
    ConfirmVisual,
    EndSession,
    EraseDigit,
    NewPinEntry,
    PlaySound,
    PrepareServer,
    ReadCard,
    SetLights,
    ShowScreen,
    SignAndSend,
    VerifyPin,
)
from kiosk.flow.events import (
    Answer,
    CardFacts,
    CardFailed,
    CardInserted,
    CardLifted,
    ConfirmRefused,
    PinAccepted,
    PinWrong,
    Pressed,
    ServerFailed,
    StaffButtonPressed,
)
from kiosk.flow.notices import Notice
from kiosk.flow.screens import PinUnavailable, ScreenId, UiAction
from kiosk.flow.settings import FlowSettings
from kiosk.flow.states import (
    Checking,
    ChoosingCheck,
    EnteringPin,
    ErrorNotice,
    Idle,
    NeedsStaff,
    OfflineNotice,
    ReadingCard,
    RemovedEarly,
    ResultOk,
    TakeCard,
    VisualCheckWait,
)
from kiosk.hw.signals import LightSignal, Sound
from tests.support.machine import ELIGIBLE, VID, Driver, records


def test_placing_a_card_reads_it_and_prepares_the_server_at_once() -> None:
    driver = Driver()
    driver.send(CardInserted())
    assert isinstance(driver.state, ReadingCard)
    session = driver.state.session
    assert ReadCard(session) in driver.last
    assert PrepareServer(session) in driver.last
    assert PlaySound(Sound.CARD_DETECTED) in driver.last
    assert SetLights(LightSignal.BUSY) in driver.last


def test_pin_is_the_default_and_tries_left_show_before_the_first_digit() -> None:
    driver = Driver()
    state = driver.read(CardFacts("mynumber_card", 2, True))
    assert isinstance(state, EnteringPin)
    screen = driver.of_type(ShowScreen)[0].screen
    assert screen.id is ScreenId.PIN_ENTRY
    assert screen.tries_left == 2
    assert screen.digits_typed == 0
    assert NewPinEntry(state.session) in driver.last


def test_the_fourth_digit_submits_and_the_correction_key_works_before_it() -> None:
    driver = Driver()
    driver.read()
    driver.digits(3)
    driver.send(Pressed(UiAction.ERASE))
    assert driver.state.digits == 2
    assert EraseDigit(driver.state.session) in driver.last
    assert driver.of_type(ShowScreen)[0].screen.digits_typed == 2
    driver.digits(1)
    assert isinstance(driver.state, EnteringPin)
    assert not driver.all_of_type(VerifyPin)
    driver.digits(1)
    assert isinstance(driver.state, Checking)
    assert driver.last.index(AcceptDigit(driver.state.session)) < driver.last.index(
        VerifyPin(driver.state.session)
    )
    assert len(driver.all_of_type(AcceptDigit)) == 5
    assert len(driver.all_of_type(VerifyPin)) == 1


def test_erase_with_nothing_typed_and_digits_after_the_fourth_do_nothing() -> None:
    driver = Driver()
    driver.read()
    before = driver.state
    driver.send(Pressed(UiAction.ERASE))
    assert driver.state == before
    assert driver.last == ()
    driver.digits(4)
    driver.digits(3)
    assert len(driver.all_of_type(AcceptDigit)) == 4
    assert driver.last == ()


def test_a_correct_pin_signs_and_sends_then_shows_the_result() -> None:
    driver = Driver()
    driver.read()
    driver.digits(4)
    session = driver.state.session
    driver.send(PinAccepted(session))
    assert driver.last == (SignAndSend(session, "pin"),)
    driver.answer(ELIGIBLE)
    assert isinstance(driver.state, ResultOk)
    assert SetLights(LightSignal.ELIGIBLE) in driver.last
    assert PlaySound(Sound.SUCCESS) in driver.last
    assert EndSession(session) in driver.last
    outcome = records(driver, "verification.outcome")[-1]
    assert outcome == {
        "route": "ok",
        "notice": None,
        "validity_code": 1,
        "reason_code": "eligible",
        "mode": "pin",
        "wrong_pins": 0,
    }


def test_a_wrong_pin_says_how_many_tries_remain_and_asks_again() -> None:
    driver = Driver()
    driver.read()
    driver.digits(4)
    driver.send(PinWrong(driver.state.session, 2))
    assert isinstance(driver.state, EnteringPin)
    screen = driver.of_type(ShowScreen)[0].screen
    assert (screen.tries_left, screen.wrong_pin, screen.digits_typed) == (2, True, 0)
    assert NewPinEntry(driver.state.session) in driver.last
    assert PlaySound(Sound.FAILURE) in driver.last
    assert records(driver, "pin.wrong") == [{"tries_left": 2, "wrong_pins": 1}]


def test_a_wrong_pin_reaching_the_floor_explains_and_offers_only_the_visual_check() -> None:
    driver = Driver()
    driver.read(CardFacts("mynumber_card", 2, True))
    driver.digits(4)
    driver.send(PinWrong(driver.state.session, 1))
    assert isinstance(driver.state, ChoosingCheck)
    screen = driver.of_type(ShowScreen)[0].screen
    assert screen.pin_unavailable is PinUnavailable.AT_FLOOR
    assert screen.tries_left == 1
    assert SetLights(LightSignal.STAFF_NEEDED) in driver.last  # staff are called
    before = len(driver.all_of_type(NewPinEntry))
    driver.send(Pressed(UiAction.CHOOSE_PIN))
    assert isinstance(driver.state, ChoosingCheck), "no PIN is asked for at the floor"
    driver.digits(4)
    assert len(driver.all_of_type(NewPinEntry)) == before
    assert not [e for e in driver.all_of_type(VerifyPin) if e.session == driver.state.session][1:]


@pytest.mark.parametrize(
    ("tries", "reason"),
    [(0, PinUnavailable.LOCKED), (1, PinUnavailable.AT_FLOOR), (None, PinUnavailable.NO_PIN)],
)
def test_locked_at_floor_or_pinless_cards_are_offered_only_the_visual_check(
    tries: int | None, reason: PinUnavailable
) -> None:
    driver = Driver()
    driver.read(CardFacts("mynumber_card", tries, True))
    assert isinstance(driver.state, ChoosingCheck)
    assert driver.state.pin_unavailable is reason
    assert not driver.all_of_type(NewPinEntry)
    driver.send(Pressed(UiAction.CHOOSE_PIN))
    driver.digits(4)
    assert not driver.all_of_type(VerifyPin)
    driver.send(Pressed(UiAction.CHOOSE_VISUAL))
    assert isinstance(driver.state, Checking)
    assert driver.state.mode == "visual"
    assert SignAndSend(driver.state.session, "visual") in driver.last


def test_a_phone_at_the_floor_goes_to_the_desk_since_it_has_no_photo() -> None:
    driver = Driver()
    driver.read(CardFacts("android", 1, False))
    assert isinstance(driver.state, NeedsStaff)
    assert driver.state.notice is Notice.PIN_AT_FLOOR
    assert SetLights(LightSignal.STAFF_NEEDED) in driver.last


def test_a_higher_floor_setting_is_respected() -> None:
    driver = Driver.with_settings(FlowSettings(pin_floor=3))
    driver.read(CardFacts("mynumber_card", 2, True))
    assert isinstance(driver.state, ChoosingCheck)
    assert driver.state.pin_unavailable is PinUnavailable.AT_FLOOR


def test_the_pin_try_that_locks_the_card_routes_to_the_visual_check() -> None:
    driver = Driver.with_settings(FlowSettings(pin_floor=1))
    driver.read(CardFacts("mynumber_card", 1, True))
    driver.digits(4)
    driver.send(PinWrong(driver.state.session, 0))
    assert isinstance(driver.state, ChoosingCheck)
    assert driver.state.pin_unavailable is PinUnavailable.LOCKED


def test_back_from_pin_entry_offers_the_choice_and_wipes_the_digits() -> None:
    driver = Driver()
    driver.read()
    driver.digits(2)
    driver.send(Pressed(UiAction.CANCEL))
    assert isinstance(driver.state, ChoosingCheck)
    assert driver.state.pin_unavailable is None
    assert ClearPin(driver.state.session) in driver.last
    driver.send(Pressed(UiAction.CHOOSE_PIN))
    assert isinstance(driver.state, EnteringPin)
    assert driver.state.digits == 0


def test_a_server_retry_resigns_a_fresh_challenge_once_and_never_resends_the_pin() -> None:
    driver = Driver()
    driver.read()
    driver.digits(4)
    session = driver.state.session
    driver.send(PinAccepted(session))
    driver.answer(Answer(VID, False, "retry", "nonce.expired"))
    assert isinstance(driver.state, Checking)
    assert SignAndSend(session, "pin", fresh_challenge=True) in driver.last
    assert len(driver.all_of_type(VerifyPin)) == 1
    driver.answer(Answer(VID, False, "retry", "nonce.used"))
    assert isinstance(driver.state, NeedsStaff)
    assert driver.state.notice is Notice.SERVER_ERROR
    assert len(driver.all_of_type(VerifyPin)) == 1


def test_the_visual_check_waits_blinking_amber_and_the_staff_button_confirms() -> None:
    driver = Driver()
    driver.read(CardFacts("mynumber_card", 0, True))
    driver.send(Pressed(UiAction.CHOOSE_VISUAL))
    session = driver.state.session
    driver.answer(Answer(VID, True, "wait_staff", "visual.awaiting_staff"))
    assert isinstance(driver.state, VisualCheckWait)
    assert SetLights(LightSignal.VISUAL_CHECK_WAITING) in driver.last
    assert AwaitStaffDecision(session, VID) in driver.last
    driver.send(StaffButtonPressed())
    assert ConfirmVisual(session, VID) in driver.last
    assert records(driver, "staff.action")[-1] == {"action": "visual_confirm", "via": "button"}
    driver.send(StaffButtonPressed())
    assert driver.last == (), "one confirmation is enough"
    driver.answer(ELIGIBLE)
    assert isinstance(driver.state, ResultOk)
    assert records(driver, "verification.outcome")[-1]["route"] == "staff"


def test_a_refused_button_confirmation_keeps_calling_staff_to_the_dashboard() -> None:
    driver = Driver()
    driver.read(CardFacts("mynumber_card", 0, True))
    driver.send(Pressed(UiAction.CHOOSE_VISUAL))
    session = driver.state.session
    driver.answer(Answer(VID, True, "wait_staff", "visual.awaiting_staff"))
    driver.send(StaffButtonPressed())
    assert ConfirmVisual(session, VID) in driver.last
    driver.send(ConfirmRefused(session))
    assert isinstance(driver.state, VisualCheckWait), "still waiting: staff decide on the dashboard"
    assert not driver.state.confirming
    assert PlaySound(Sound.REMINDER_1) in driver.last
    assert records(driver, "staff.confirm_refused")
    driver.answer(ELIGIBLE)  # the dashboard's confirmation, through the long-poll
    assert isinstance(driver.state, ResultOk)


def test_the_visual_check_confirmed_on_the_dashboard_arrives_through_the_long_poll() -> None:
    driver = Driver()
    driver.read(CardFacts("mynumber_card", None, True))
    driver.send(Pressed(UiAction.CHOOSE_VISUAL))
    driver.answer(Answer(VID, True, "wait_staff", "visual.awaiting_staff"))
    driver.answer(Answer("b" * 32, False, "eligible", "eligible", 1))
    assert isinstance(driver.state, VisualCheckWait), "another verification's answer is ignored"
    driver.answer(Answer(VID, False, "see_staff.rejected", "visual.rejected"))
    assert isinstance(driver.state, NeedsStaff)
    assert driver.state.notice is Notice.VISUAL_REJECTED


def test_waiting_for_staff_too_long_calls_them_again_and_keeps_waiting() -> None:
    driver = Driver()
    driver.read(CardFacts("mynumber_card", 0, True))
    driver.send(Pressed(UiAction.CHOOSE_VISUAL))
    driver.answer(Answer(VID, True, "wait_staff", "visual.awaiting_staff"))
    driver.timeout()
    assert isinstance(driver.state, VisualCheckWait)
    assert PlaySound(Sound.REMINDER_1) in driver.last
    assert records(driver, "staff.recall") == [{"alerts": 1}]


def test_a_patient_who_walks_away_during_pin_entry_leaves_no_pin_behind() -> None:
    driver = Driver()
    driver.read()
    driver.digits(3)
    session = driver.state.session
    driver.timeout()
    assert isinstance(driver.state, TakeCard)
    assert EndSession(session) in driver.last
    assert driver.last.index(EndSession(session)) < driver.last.index(driver.of_type(ShowScreen)[0])
    assert not driver.all_of_type(VerifyPin)
    assert not records(driver, "verification.outcome"), "nothing was checked, nothing recorded"


@pytest.mark.parametrize(
    "setup",
    ["reading", "choosing", "pin_entry", "verifying", "sending", "visual_wait"],
)
def test_a_card_removed_before_the_end_says_so_then_goes_idle(setup: str) -> None:
    driver = Driver()
    if setup == "reading":
        driver.send(CardInserted())
    elif setup == "choosing":
        driver.read(CardFacts("mynumber_card", 0, True))
    elif setup == "pin_entry":
        driver.read()
        driver.digits(2)
    elif setup in ("verifying", "sending"):
        driver.read()
        driver.digits(4)
        if setup == "sending":
            driver.send(PinAccepted(driver.state.session))
    else:
        driver.read(CardFacts("mynumber_card", 0, True))
        driver.send(Pressed(UiAction.CHOOSE_VISUAL))
        driver.answer(Answer(VID, True, "wait_staff", "visual.awaiting_staff"))
    session = driver.state.session
    driver.send(CardLifted())
    assert isinstance(driver.state, RemovedEarly)
    assert EndSession(session) in driver.last
    assert driver.of_type(ShowScreen)[0].screen.notice is Notice.CARD_REMOVED_EARLY
    driver.answer(ELIGIBLE)  # whatever was in flight is dropped
    assert isinstance(driver.state, RemovedEarly)
    driver.timeout()
    assert isinstance(driver.state, Idle)


def test_a_removal_reported_by_a_failed_card_command_is_a_removal() -> None:
    driver = Driver()
    driver.read()
    driver.digits(4)
    driver.send(CardFailed(driver.state.session, "card.removed"))
    assert isinstance(driver.state, RemovedEarly)


def test_a_server_unreachable_at_prefetch_stops_the_patient_before_typing() -> None:
    driver = Driver()
    driver.read()
    driver.send(ServerFailed(driver.state.session, "server.unreachable", True))
    assert isinstance(driver.state, OfflineNotice)
    assert SetLights(LightSignal.STAFF_NEEDED) in driver.last
    assert driver.of_type(ShowScreen)[0].screen.notice is Notice.SERVER_UNREACHABLE
    assert records(driver, "server.error") == [{"code": "server.unreachable"}]
    # the recorded name is the screen's, whatever the class is called (the server reads it)
    assert records(driver, "flow.transition")[-1]["to"] == "server_unreachable"


def test_a_refused_request_needs_staff_with_a_server_error() -> None:
    driver = Driver()
    driver.read()
    driver.send(ServerFailed(driver.state.session, "server.rejected", False))
    assert isinstance(driver.state, NeedsStaff)
    assert driver.state.notice is Notice.SERVER_ERROR


@pytest.mark.parametrize(
    ("message", "notice"),
    [
        ("see_staff.revoked", Notice.REVOKED),
        ("see_staff.expired", Notice.EXPIRED),
        ("see_staff.card_not_accepted", Notice.CARD_NOT_ACCEPTED),
    ],
)
def test_a_refused_certificate_is_an_error_screen_that_still_calls_staff(
    message: str, notice: Notice
) -> None:
    driver = Driver()
    driver.read()
    driver.digits(4)
    driver.send(PinAccepted(driver.state.session))
    driver.answer(Answer(VID, False, message, "certificate.x"))
    assert isinstance(driver.state, ErrorNotice)
    assert driver.state.notice is notice
    assert SetLights(LightSignal.STAFF_NEEDED) in driver.last
    assert records(driver, "verification.outcome")[-1]["route"] == "error"
    assert records(driver, "verification.outcome")[-1]["notice"] == notice.number


@pytest.mark.parametrize(
    ("message", "notice"),
    [
        ("see_staff.invalid", Notice.INVALID),
        ("see_staff.newer_qualification", Notice.NEWER_QUALIFICATION),
        ("see_staff.not_found", Notice.NOT_FOUND),
        ("see_staff.multiple", Notice.MULTIPLE),
        ("see_staff.system_down", Notice.SYSTEM_DOWN),
        ("something.the.kiosk.does.not.know", Notice.SERVER_ERROR),
    ],
)
def test_eligibility_problems_hand_over_to_the_desk(message: str, notice: Notice) -> None:
    driver = Driver()
    driver.read()
    driver.digits(4)
    driver.send(PinAccepted(driver.state.session))
    driver.answer(Answer(VID, False, message, "national.x", 2))
    assert isinstance(driver.state, NeedsStaff)
    assert driver.state.notice is notice
    assert records(driver, "verification.outcome")[-1]["route"] == "staff"


def test_not_a_my_number_card_is_a_red_error() -> None:
    driver = Driver()
    driver.send(CardInserted())
    driver.send(CardFailed(driver.state.session, "card.not_jpki"))
    assert isinstance(driver.state, ErrorNotice)
    assert driver.state.notice is Notice.NOT_MY_NUMBER_CARD
    assert SetLights(LightSignal.ERROR) in driver.last


def test_an_unreadable_card_times_out_to_the_desk() -> None:
    driver = Driver()
    driver.send(CardInserted())
    driver.timeout()
    assert isinstance(driver.state, NeedsStaff)
    assert driver.state.notice is Notice.CARD_UNREADABLE
