"""The runner with doubles: a virtual card in-process, a scripted reader, a fake clinic over
httpx's MockTransport; every effect really executed, every result fed back as an event."""

from __future__ import annotations

import threading
import time

from kiosk.flow.screens import Language, ScreenId, UiAction
from kiosk.flow.settings import FlowSettings, FlowTimeouts
from kiosk.hw.config import ReminderSchedule
from kiosk.hw.signals import LightSignal, Sound
from tests.support.runner import PIN, FakeClinic, Harness


def test_a_pin_check_runs_card_server_screen_lights_and_sound(harness) -> None:
    kiosk = harness()
    kiosk.place()
    entry = kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    assert entry.tries_left == 3
    kiosk.type(PIN)
    kiosk.display.wait_screen(ScreenId.RESULT_OK)
    assert kiosk.links[-1].verifies_with_pin() == 1
    assert kiosk.clinic.requests.count("POST /verifications") == 1
    assert (LightSignal.ELIGIBLE, 0) in kiosk.lit()
    assert kiosk.sounds()[:1] == [Sound.CARD_DETECTED]
    assert kiosk.sounds().count(Sound.KEY) == 4
    assert kiosk.sounds()[-1] is Sound.SUCCESS
    outcome = kiosk.records("verification.outcome")
    assert outcome[-1]["route"] == "ok"
    assert outcome[-1]["validity_code"] == 1


def test_a_retry_answer_signs_a_fresh_challenge_without_sending_the_pin_again(harness) -> None:
    clinic = FakeClinic(answers=["retry", "eligible"])
    kiosk = harness(clinic=clinic)
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    kiosk.type(PIN)
    kiosk.display.wait_screen(ScreenId.RESULT_OK)
    link = kiosk.links[-1]
    assert link.verifies_with_pin() == 1
    assert sum(1 for c in link.commands if c[:2] == b"\x80\x2a") == 2, "signed twice"
    assert clinic.requests.count("POST /verifications") == 2
    assert kiosk.records("server.retry")


def test_pin_digits_never_appear_in_events_records_or_screens(harness) -> None:
    kiosk = harness()
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    kiosk.type(PIN)
    kiosk.display.wait_screen(ScreenId.RESULT_OK)
    kiosk.journal.flush()
    for text in (repr(kiosk.events), repr(kiosk.sink.records), repr(kiosk.display.screens)):
        assert PIN not in text
        for digit in set(PIN):
            assert f"'{digit}'" not in text


def test_the_card_left_on_the_reader_blinks_the_result_faster_and_beeps(harness) -> None:
    schedule = ReminderSchedule(remind_after_s=(0.2, 0.4, 0.6), repeat_s=1.0)
    timeouts = FlowTimeouts(after_removal_s=0.3)
    kiosk = harness(settings=FlowSettings(reminders=schedule, timeouts=timeouts))
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    kiosk.type(PIN)
    kiosk.display.wait_screen(ScreenId.RESULT_OK)
    kiosk.display.wait_for(lambda s: s.id is ScreenId.TAKE_CARD and s.reminder_level == 3)
    lit = kiosk.lit()
    assert [s for s in lit if s[0] is LightSignal.ELIGIBLE] == [(LightSignal.ELIGIBLE, 0)]
    assert [s for s in lit if s[0] is LightSignal.STAFF_NEEDED] == [
        (LightSignal.STAFF_NEEDED, level) for level in (1, 2, 3)
    ]
    assert [s for s in kiosk.sounds() if s.name.startswith("REMINDER")] == [
        Sound.REMINDER_1,
        Sound.REMINDER_2,
        Sound.REMINDER_3,
    ]
    kiosk.take()
    kiosk.display.wait_screen(ScreenId.RESULT_OK)
    kiosk.display.wait_screen(ScreenId.IDLE)


def test_staff_mode_shows_status_lines_and_the_language_comes_back(harness) -> None:
    kiosk = harness()
    kiosk.press(UiAction.OPEN_LANGUAGES)
    kiosk.press(UiAction.SET_LANGUAGE, Language.PT.value)
    kiosk.display.wait_for(lambda s: s.id is ScreenId.IDLE and s.language is Language.PT)
    kiosk.runner.on_staff_long_press()
    staff = kiosk.display.wait_screen(ScreenId.STAFF_MODE)
    assert staff.staff_lines == ("reader: present", "server: ok")
    kiosk.press(UiAction.STAFF_EXIT)
    idle = kiosk.display.wait_screen(ScreenId.IDLE)
    assert idle.language is Language.JA


def test_a_malformed_touch_is_ignored(harness) -> None:
    kiosk = harness()
    kiosk.press(UiAction.SET_LANGUAGE, "xx")
    kiosk.press(UiAction.DIGIT, "12")
    kiosk.press(UiAction.OPEN_LANGUAGES)
    kiosk.display.wait_screen(ScreenId.LANGUAGES)
    assert [s.id for s in kiosk.display.screens] == [ScreenId.IDLE, ScreenId.LANGUAGES]
    assert kiosk.runner.alive


def test_the_idle_runner_sleeps(harness) -> None:
    kiosk = harness()
    time.sleep(0.1)
    steps = kiosk.runner.steps
    cpu = time.process_time()
    time.sleep(1.0)
    assert kiosk.runner.steps == steps
    assert time.process_time() - cpu < 0.05, "nothing spins while nobody is there"


def test_stopping_closes_every_thread(make_profile) -> None:
    before = set(threading.enumerate())
    kiosk = Harness(make_profile()).start()
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    kiosk.stop()
    time.sleep(0.1)
    left = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert not left
    assert kiosk.display.stopped
    assert kiosk.links[-1].closed, "the card link is reset: no verified PIN outlives the kiosk"
    assert kiosk.reader.closed


def test_a_patient_who_walks_away_mid_pin_leaves_no_digit_no_card_session_no_request(
    make_profile,
) -> None:
    kiosk = Harness(make_profile(), settings=FlowSettings(timeouts=FlowTimeouts(pin_entry_s=0.3)))
    entries = []
    make_entry = kiosk.card_worker.pin_entry

    def keep(session: int):
        entry = make_entry(session)
        entries.append(entry)
        return entry

    kiosk.card_worker.pin_entry = keep  # type: ignore[method-assign]
    kiosk.start()
    try:
        kiosk.place()
        screen = kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
        kiosk.type(PIN[:3])
        kiosk.display.wait_for(lambda s: s.id is ScreenId.PIN_ENTRY and s.digits_typed == 3)
        kiosk.display.wait_screen(ScreenId.TAKE_CARD)
        assert screen.tries_left == 3
        (entry,) = entries
        assert len(entry) == 0, "the typed digits are wiped"
        assert not entry.spent, "and were never sent"
        assert kiosk.links[-1].verifies_with_pin() == 0
        assert "POST /verifications" not in kiosk.clinic.requests, "no record at the server"
        deadline = time.monotonic() + 2
        while not kiosk.links[-1].closed:  # the card is reset: no session survives
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert kiosk.card_worker.pin_entry(kiosk.runner.state.session) is None
    finally:
        kiosk.stop()


def test_the_runner_remembers_the_last_notice_for_the_heartbeat(harness) -> None:
    kiosk = harness(clinic=FakeClinic(answers=["see_staff.revoked"]))
    assert kiosk.runner.last_notice is None
    before = time.time()
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    kiosk.type(PIN)
    kiosk.display.wait_for(lambda screen: screen.notice is not None)
    notice = kiosk.runner.last_notice
    assert notice is not None
    assert notice[0] == "K-201"
    assert before <= notice[1] <= time.time()
