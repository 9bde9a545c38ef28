"""An iPhone whose owner passed Face ID: the kiosk skips the PIN pad only when the card
session reports the PIN as already verified; every other phone stays PIN-first (the pure
machine: no I/O, no clock)."""

from __future__ import annotations

from kiosk.flow.effects import (
    AwaitStaffDecision,
    ClearPin,
    NewPinEntry,
    ShowScreen,
    SignAndSend,
    VerifyPin,
)
from kiosk.flow.events import Answer, CardFacts, PinAccepted, Pressed
from kiosk.flow.notices import Notice
from kiosk.flow.screens import ScreenId, UiAction
from kiosk.flow.states import Checking, EnteringPin, ResultOk, VisualCheckWait
from kiosk.flow.views import staff_call_of
from tests.support.machine import ELIGIBLE, Driver, records

IPHONE_VERIFIED = CardFacts("iphone", 3, True, pin_verified=True)
IPHONE_NOT_VERIFIED = CardFacts("iphone", 3, True)


def test_an_iphone_reporting_the_pin_verified_signs_without_the_pin_pad() -> None:
    driver = Driver()
    state = driver.read(IPHONE_VERIFIED)
    assert isinstance(state, Checking)
    assert state.mode == "pin"
    assert not state.verifying
    session = state.session
    assert SignAndSend(session, "pin") in driver.last
    screens = [e.screen.id for e in driver.all_of_type(ShowScreen)]
    assert ScreenId.PIN_ENTRY not in screens
    assert ScreenId.CHECKING in screens
    assert not driver.all_of_type(NewPinEntry)
    assert not driver.all_of_type(VerifyPin)
    assert records(driver, "pin.verified_on_phone") == [{"token": "iphone"}]
    driver.answer(ELIGIBLE)
    assert isinstance(driver.state, ResultOk)
    assert not driver.all_of_type(VerifyPin), "no PIN is ever sent for the patient"


def test_an_iphone_without_the_verified_answer_gets_the_pin_pad() -> None:
    driver = Driver()
    state = driver.read(IPHONE_NOT_VERIFIED)
    assert isinstance(state, EnteringPin)
    assert NewPinEntry(state.session) in driver.last
    assert not driver.all_of_type(SignAndSend)
    driver.digits(4)
    assert VerifyPin(driver.state.session) in driver.last
    driver.send(PinAccepted(driver.state.session))
    assert driver.last == (SignAndSend(driver.state.session, "pin"),)


def test_an_iphone_without_the_verified_answer_may_choose_staff_instead() -> None:
    driver = Driver()
    driver.read(IPHONE_NOT_VERIFIED)
    session = driver.state.session
    driver.send(Pressed(UiAction.CHOOSE_VISUAL))
    assert isinstance(driver.state, Checking)
    assert driver.state.mode == "visual"
    assert ClearPin(session) in driver.last
    assert SignAndSend(session, "visual") in driver.last
    wait = Answer("w" * 32, True, "wait_staff", "visual.awaiting_staff")
    driver.answer(wait)
    assert isinstance(driver.state, VisualCheckWait)
    assert AwaitStaffDecision(session, "w" * 32) in driver.last
    call = staff_call_of(driver.state)
    assert call is not None
    assert call.reason == "visual_check.phone"
    assert call.notice is Notice.NO_PIN
    assert not driver.all_of_type(VerifyPin)


def test_android_stays_pin_first_even_if_its_facts_say_verified() -> None:
    # the card worker only ever reports an iPhone as verified; the machine keeps Android on
    # the PIN pad all the same when it is told nothing else
    driver = Driver()
    state = driver.read(CardFacts("android", 3, False))
    assert isinstance(state, EnteringPin)
    driver.send(Pressed(UiAction.CHOOSE_VISUAL))
    assert isinstance(driver.state, EnteringPin), "a phone without a photo has no visual check"


def test_a_locked_iphone_goes_to_the_choice_not_the_pin_pad() -> None:
    driver = Driver()
    driver.read(CardFacts("iphone", 0, True))
    screen = driver.of_type(ShowScreen)[0].screen
    assert screen.id is ScreenId.CHOOSE_CHECK
    assert not driver.all_of_type(SignAndSend)
