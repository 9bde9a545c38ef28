"""The verification flow, one behaviour at a time, on the pure machine (no I/O, no clock)."""

from __future__ import annotations

import pytest
from machine_support import MYNUMBER, Driver

from kiosk.flow.machine import (
    AcceptDigit,
    Answer,
    AwaitStaffDecision,
    CardFacts,
    CardFailed,
    CardInserted,
    CardRead,
    CardRemoved,
    Checking,
    CheckReader,
    ChoosingCheck,
    ChoosingLanguage,
    ClearPin,
    ConfirmVisual,
    EndSession,
    EnteringPin,
    EraseDigit,
    ErrorNotice,
    FlowSettings,
    FlowTimeouts,
    Idle,
    NeedsStaff,
    NewPinEntry,
    NoCardHelp,
    PinAccepted,
    PinWrong,
    PlaySound,
    PrepareServer,
    Pressed,
    ReadCard,
    ReaderBack,
    ReaderLost,
    ReaderMissing,
    ReadingCard,
    Record,
    RemovedEarly,
    ResultOk,
    ServerFailed,
    ServerUnreachable,
    SetLights,
    ShowScreen,
    SignAndSend,
    StaffButton,
    StaffMode,
    StartTimer,
    TakeCard,
    TimerFired,
    VerifyPin,
    VisualCheckWait,
)
from kiosk.flow.notices import Notice
from kiosk.flow.screens import Language, PinUnavailable, ScreenId, UiAction
from kiosk.hw.config import ReminderSchedule
from kiosk.hw.signals import LightSignal, Sound

VID = "a" * 32
ELIGIBLE = Answer(VID, False, "eligible", "eligible", 1)


def screens(driver: Driver) -> list[ScreenId]:
    return [e.screen.id for e in driver.effects if isinstance(e, ShowScreen)]


def records(driver: Driver, kind: str) -> list[dict]:
    return [e.payload for e in driver.effects if isinstance(e, Record) and e.kind == kind]


def test_the_one_initial_state_is_idle_in_japanese_with_a_timer() -> None:
    driver = Driver()
    assert driver.state == Idle()
    assert driver.last == (
        StartTimer(300.0, 0),
        ShowScreen(driver.last[1].screen),
        SetLights(LightSignal.READY),
    )
    assert driver.last[1].screen.language is Language.JA


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
    driver.send(StaffButton())
    assert ConfirmVisual(session, VID) in driver.last
    assert records(driver, "staff.action")[-1] == {"action": "visual_confirm", "via": "button"}
    driver.send(StaffButton())
    assert driver.last == (), "one confirmation is enough"
    driver.answer(ELIGIBLE)
    assert isinstance(driver.state, ResultOk)
    assert records(driver, "verification.outcome")[-1]["route"] == "staff"


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


def test_the_next_patient_starts_with_the_pin_again_after_a_visual_check() -> None:
    driver = Driver()
    driver.read(CardFacts("mynumber_card", 0, True))
    driver.send(Pressed(UiAction.CHOOSE_VISUAL))
    driver.answer(Answer(VID, True, "wait_staff", "visual.awaiting_staff"))
    driver.send(StaffButton())
    driver.answer(ELIGIBLE)
    driver.send(CardRemoved())
    driver.timeout()
    assert isinstance(driver.state, Idle)
    assert isinstance(driver.read(), EnteringPin)


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


def test_a_card_left_on_the_reader_is_reminded_with_escalation_until_taken() -> None:
    # the default [card_left] schedule: levels at 5, 15 and 30 s after the result, each
    # level's sound again every 10 s
    driver = Driver()
    driver.read()
    driver.digits(4)
    driver.send(PinAccepted(driver.state.session))
    driver.answer(ELIGIBLE)
    assert driver.of_type(StartTimer)[0].seconds == 5.0
    seen = []
    for _ in range(6):
        driver.timeout()
        assert isinstance(driver.state, TakeCard)
        seen.append(
            (
                driver.state.elapsed_s,
                driver.of_type(ShowScreen)[0].screen.reminder_level,
                driver.of_type(PlaySound)[0].sound,
                driver.of_type(SetLights)[0],
            )
        )
    green = LightSignal.ELIGIBLE  # the result's lamp keeps its colour and blinks faster
    assert seen == [
        (5.0, 1, Sound.REMINDER_1, SetLights(green, 1)),
        (15.0, 2, Sound.REMINDER_2, SetLights(green, 2)),
        (25.0, 2, Sound.REMINDER_2, SetLights(green, 2)),
        (30.0, 3, Sound.REMINDER_3, SetLights(green, 3)),
        (40.0, 3, Sound.REMINDER_3, SetLights(green, 3)),
        (50.0, 3, Sound.REMINDER_3, SetLights(green, 3)),
    ]
    driver.send(CardRemoved())
    assert isinstance(driver.state, ResultOk), "the result shows again once the card is taken"
    assert not driver.state.card_present
    driver.timeout()
    assert isinstance(driver.state, Idle)


def test_a_needs_staff_notice_stays_on_the_take_card_screen() -> None:
    driver = Driver()
    driver.read()
    driver.digits(4)
    driver.send(PinAccepted(driver.state.session))
    driver.answer(Answer(VID, False, "see_staff.not_found", "national.not_found", 4))
    driver.timeout()
    screen = driver.of_type(ShowScreen)[0].screen
    assert (screen.id, screen.notice, screen.reminder_level) == (
        ScreenId.TAKE_CARD,
        Notice.NOT_FOUND,
        1,
    )
    assert SetLights(LightSignal.STAFF_NEEDED, 1) in driver.last


def test_a_shorter_reminder_schedule_from_config_is_followed() -> None:
    schedule = ReminderSchedule(remind_after_s=(1.0, 2.0, 3.0), repeat_s=1.0)
    driver = Driver.with_settings(FlowSettings(reminders=schedule))
    driver.read()
    driver.timeout()  # walked away during PIN entry: no result, blue lamp
    assert isinstance(driver.state, TakeCard)
    assert driver.of_type(StartTimer)[0].seconds == 1.0
    assert SetLights(LightSignal.READY, 0) in driver.last
    levels = []
    for _ in range(4):
        driver.timeout()
        levels.append((driver.state.reminder_level, driver.of_type(StartTimer)[0].seconds))
    assert levels == [(1, 1.0), (2, 1.0), (3, 1.0), (3, 1.0)]
    driver.send(CardRemoved())
    assert isinstance(driver.state, Idle)


def test_a_result_stays_readable_after_the_card_is_taken_then_idle() -> None:
    driver = Driver.with_settings(FlowSettings(timeouts=FlowTimeouts(after_removal_s=4.0)))
    driver.read()
    driver.digits(4)
    driver.send(PinAccepted(driver.state.session))
    driver.answer(ELIGIBLE)
    driver.send(CardRemoved())
    assert isinstance(driver.state, ResultOk)
    assert not driver.state.card_present
    assert StartTimer(4.0, driver.state.timer) in driver.last
    driver.timeout()
    assert isinstance(driver.state, Idle)


@pytest.mark.parametrize("language", [Language.EN, Language.VI])
def test_the_language_returns_to_japanese_after_each_patient(language: Language) -> None:
    driver = Driver()
    driver.send(Pressed(UiAction.OPEN_LANGUAGES))
    assert isinstance(driver.state, ChoosingLanguage)
    driver.send(Pressed(UiAction.SET_LANGUAGE, language))
    assert driver.state.language is language
    driver.read()
    assert driver.state.language is language, "the patient's own choice holds for them"
    driver.digits(4)
    driver.send(PinAccepted(driver.state.session))
    driver.answer(ELIGIBLE)
    assert driver.of_type(ShowScreen)[0].screen.language is language
    driver.send(CardRemoved())
    driver.timeout()
    assert driver.state == Idle(timer=driver.state.timer, session=driver.state.session)
    assert driver.of_type(ShowScreen)[0].screen.language is Language.JA


def test_an_unused_language_choice_falls_back_to_japanese_on_the_idle_timeout() -> None:
    driver = Driver()
    driver.send(Pressed(UiAction.OPEN_LANGUAGES), Pressed(UiAction.SET_LANGUAGE, Language.KO))
    driver.timeout()
    assert driver.state.language is Language.JA
    assert CheckReader() in driver.last


def test_no_card_calls_staff_in_amber_and_returns_to_idle() -> None:
    driver = Driver()
    driver.send(Pressed(UiAction.NO_CARD))
    assert isinstance(driver.state, NoCardHelp)
    assert SetLights(LightSignal.STAFF_NEEDED) in driver.last
    assert driver.of_type(ShowScreen)[0].screen.notice is Notice.NO_CARD
    assert records(driver, "staff.action") == [{"action": "called_no_card"}]
    driver.timeout()
    assert isinstance(driver.state, Idle)


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
    driver.send(CardRemoved())
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


def test_events_of_an_earlier_card_are_ignored() -> None:
    driver = Driver()
    driver.send(CardInserted())
    old = driver.state.session
    driver.send(CardRemoved(), CardInserted())
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


def test_a_server_unreachable_at_prefetch_stops_the_patient_before_typing() -> None:
    driver = Driver()
    driver.read()
    driver.send(ServerFailed(driver.state.session, "server.unreachable", True))
    assert isinstance(driver.state, ServerUnreachable)
    assert SetLights(LightSignal.STAFF_NEEDED) in driver.last
    assert driver.of_type(ShowScreen)[0].screen.notice is Notice.SERVER_UNREACHABLE
    assert records(driver, "server.error") == [{"code": "server.unreachable"}]


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
    driver.send(StaffButton(long=True))
    assert isinstance(driver.state, StaffMode)
    assert driver.state.card_present
    assert EndSession(session) in driver.last
    assert SetLights(LightSignal.OFF) in driver.last
    driver.send(CardRemoved())
    driver.send(Pressed(UiAction.STAFF_EXIT))
    assert isinstance(driver.state, Idle)
    assert CheckReader() in driver.last
    assert [r["action"] for r in records(driver, "staff.action")] == [
        "staff_mode_open",
        "staff_mode_exit",
    ]


def test_a_digit_outside_pin_entry_is_ignored() -> None:
    driver = Driver()
    for setup in (lambda: None, lambda: driver.send(Pressed(UiAction.NO_CARD))):
        setup()
        before = driver.state
        driver.send(Pressed(UiAction.DIGIT))
        assert driver.state == before
        assert driver.last == ()


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
