"""The card worker inside the running flow: the card opened while the patient reads, PIN tries,
a card taken mid-command, the reader unplugged, an old card's events kept from a new one."""

from __future__ import annotations

import time

from kiosk.flow.screens import PinUnavailable, ScreenId
from kiosk.flow.settings import FlowSettings, FlowTimeouts
from tests.support.runner import PIN, Harness


def test_the_certificate_is_read_and_the_pin_file_selected_before_the_fourth_digit(
    harness,
) -> None:
    kiosk = harness()
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    kiosk.type(PIN[:3])
    time.sleep(0.2)
    link = kiosk.links[-1]
    before = len(link.commands)
    kiosk.type(PIN[3])
    kiosk.display.wait_screen(ScreenId.RESULT_OK)
    after = [c[:2].hex() for c in link.commands[before:]]
    # VERIFY, SELECT the key, COMPUTE DIGITAL SIGNATURE: nothing else after the last digit
    assert after == ["0020", "00a4", "802a"]


def test_a_wrong_pin_counts_down_on_the_card_and_the_screen(harness, make_profile) -> None:
    kiosk = harness(make_profile(pin_tries_left=3))
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    kiosk.type("0000")
    screen = kiosk.display.wait_for(lambda s: s.id is ScreenId.PIN_ENTRY and s.wrong_pin)
    assert screen.tries_left == 2
    assert kiosk.profile.pin_tries_left == 2
    kiosk.type("1111")
    choose = kiosk.display.wait_screen(ScreenId.CHOOSE_CHECK)
    assert choose.pin_unavailable is PinUnavailable.AT_FLOOR
    assert kiosk.profile.pin_tries_left == 1, "the last try is kept"
    assert [r["tries_left"] for r in kiosk.records("pin.wrong")] == [2, 1]


def test_a_card_taken_during_the_check_is_reported_and_nothing_is_stuck(harness) -> None:
    kiosk = harness(settings=FlowSettings(timeouts=FlowTimeouts(removed_early_s=0.5)))
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    kiosk.links[-1].delay_s = 0.2  # a slow card: the removal lands mid-command
    kiosk.type(PIN)
    kiosk.display.wait_screen(ScreenId.CHECKING)
    kiosk.take()
    kiosk.display.wait_screen(ScreenId.REMOVED_EARLY)
    kiosk.display.wait_screen(ScreenId.IDLE)


def test_the_reader_unplugged_and_back(harness) -> None:
    kiosk = harness()
    kiosk.reader.lose()
    kiosk.display.wait_screen(ScreenId.READER_MISSING)
    kiosk.reader.bring_back()
    kiosk.display.wait_screen(ScreenId.IDLE)


def test_a_missing_reader_at_start_is_shown(make_profile) -> None:
    kiosk = Harness(make_profile())
    kiosk.reader.readers = []
    kiosk.runner.start()
    try:
        kiosk.display.wait_screen(ScreenId.READER_MISSING)
    finally:
        kiosk.stop()


def test_events_of_an_old_card_never_reach_a_new_one(harness, make_profile) -> None:
    kiosk = harness()
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    kiosk.take()
    kiosk.display.wait_screen(ScreenId.REMOVED_EARLY)
    kiosk.place()
    kiosk.display.wait_for(lambda s: s.id is ScreenId.PIN_ENTRY and not s.wrong_pin)
    kiosk.type(PIN)
    kiosk.display.wait_screen(ScreenId.RESULT_OK)
    sessions = {e.session for e in kiosk.events if hasattr(e, "session")}
    assert len(sessions) == 2


def test_a_job_of_an_ended_session_is_skipped(make_profile) -> None:
    kiosk = Harness(make_profile())
    worker = kiosk.card_worker
    worker.read_card(1)
    worker.end_session(1)  # the card was taken before its job ran
    worker.start()
    try:
        assert worker.flush()
        assert kiosk.links == [], "the card of an ended session is never opened"
    finally:
        worker.stop()
