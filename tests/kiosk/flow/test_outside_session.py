"""Outside a card session, one behaviour at a time: idle, the languages, no card, the result
after the card, the card-left reminders (the pure machine: no I/O, no clock)."""

from __future__ import annotations

import pytest

from kiosk.flow.effects import CheckReader, PlaySound, SetLights, ShowScreen, StartTimer
from kiosk.flow.events import (
    Answer,
    CardFacts,
    CardLifted,
    PinAccepted,
    Pressed,
    StaffButtonPressed,
)
from kiosk.flow.notices import Notice
from kiosk.flow.screens import Language, ScreenId, UiAction
from kiosk.flow.settings import FlowSettings, FlowTimeouts
from kiosk.flow.states import ChoosingLanguage, EnteringPin, Idle, NoCardHelp, ResultOk, TakeCard
from kiosk.hw.config import ReminderSchedule
from kiosk.hw.signals import LightSignal, Sound
from tests.support.machine import ELIGIBLE, VID, Driver, records


def test_the_next_patient_starts_with_the_pin_again_after_a_visual_check() -> None:
    driver = Driver()
    driver.read(CardFacts("mynumber_card", 0, True))
    driver.send(Pressed(UiAction.CHOOSE_VISUAL))
    driver.answer(Answer(VID, True, "wait_staff", "visual.awaiting_staff"))
    driver.send(StaffButtonPressed())
    driver.answer(ELIGIBLE)
    driver.send(CardLifted())
    driver.timeout()
    assert isinstance(driver.state, Idle)
    assert isinstance(driver.read(), EnteringPin)


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
    amber = LightSignal.STAFF_NEEDED  # never green: amber blinks faster at each level
    assert seen == [
        (5.0, 1, Sound.REMINDER_1, SetLights(amber, 1)),
        (15.0, 2, Sound.REMINDER_2, SetLights(amber, 2)),
        (25.0, 2, Sound.REMINDER_2, SetLights(amber, 2)),
        (30.0, 3, Sound.REMINDER_3, SetLights(amber, 3)),
        (40.0, 3, Sound.REMINDER_3, SetLights(amber, 3)),
        (50.0, 3, Sound.REMINDER_3, SetLights(amber, 3)),
    ]
    driver.send(CardLifted())
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
    driver.send(CardLifted())
    assert isinstance(driver.state, Idle)


def test_a_result_stays_readable_after_the_card_is_taken_then_idle() -> None:
    driver = Driver.with_settings(FlowSettings(timeouts=FlowTimeouts(after_removal_s=4.0)))
    driver.read()
    driver.digits(4)
    driver.send(PinAccepted(driver.state.session))
    driver.answer(ELIGIBLE)
    driver.send(CardLifted())
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
    driver.send(CardLifted())
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


def test_a_digit_outside_pin_entry_is_ignored() -> None:
    driver = Driver()
    for setup in (lambda: None, lambda: driver.send(Pressed(UiAction.NO_CARD))):
        setup()
        before = driver.state
        driver.send(Pressed(UiAction.DIGIT))
        assert driver.state == before
        assert driver.last == ()
