"""The server worker inside the running flow: the challenge prefetched and kept fresh, staff
decisions by button and long-poll, an unreachable, failing or hanging server."""

from __future__ import annotations

import threading
import time

import pytest

from kiosk.flow.notices import Notice
from kiosk.flow.screens import PinUnavailable, ScreenId, UiAction
from kiosk.flow.server_worker import ServerWorker
from kiosk.flow.settings import FlowSettings, FlowTimeouts
from kiosk.hw.signals import LightSignal, Sound
from tests.support.runner import PIN, FakeClinic


def test_the_challenge_is_fetched_while_the_patient_is_still_typing(harness) -> None:
    kiosk = harness()
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    deadline = time.monotonic() + 5
    while "POST /challenges" not in kiosk.clinic.requests:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    kiosk.type(PIN[:3])
    time.sleep(0.05)
    assert kiosk.clinic.requests == ["POST /challenges"], "nothing else before the 4th digit"
    kiosk.type(PIN[3])
    kiosk.display.wait_screen(ScreenId.RESULT_OK)
    assert kiosk.clinic.requests == ["POST /challenges", "POST /verifications"]


def test_a_stale_challenge_is_fetched_again_and_the_connection_kept_warm(harness) -> None:
    kiosk = harness(challenge_max_age_s=0.3)
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    time.sleep(1.0)
    challenges = kiosk.clinic.requests.count("POST /challenges")
    assert challenges >= 3, "refreshed while the patient dawdles"
    kiosk.type(PIN)
    kiosk.display.wait_screen(ScreenId.RESULT_OK)
    assert kiosk.clinic.issued[-1] in kiosk.clinic.used or kiosk.clinic.issued[-2] in (
        kiosk.clinic.used
    )


def test_the_visual_check_is_confirmed_with_the_staff_button(harness, make_profile) -> None:
    kiosk = harness(make_profile(pin_tries_left=0))
    kiosk.place()
    choose = kiosk.display.wait_screen(ScreenId.CHOOSE_CHECK)
    assert choose.pin_unavailable is PinUnavailable.LOCKED
    assert (LightSignal.STAFF_NEEDED, 0) in kiosk.lit()
    kiosk.press(UiAction.CHOOSE_VISUAL)
    kiosk.display.wait_screen(ScreenId.VISUAL_WAIT)
    assert kiosk.lit()[-1] == (LightSignal.VISUAL_CHECK_WAITING, 0)
    kiosk.runner.on_staff_press()
    kiosk.display.wait_screen(ScreenId.RESULT_OK)
    assert any(r.endswith("/confirm") for r in kiosk.clinic.requests)
    assert kiosk.links[-1].verifies_with_pin() == 0, "a locked card is never sent a PIN"


def test_a_refused_staff_button_keeps_waiting_for_the_dashboard(harness, make_profile) -> None:
    kiosk = harness(make_profile(pin=None), clinic=FakeClinic(refuse_button=True))
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.CHOOSE_CHECK)
    kiosk.press(UiAction.CHOOSE_VISUAL)
    kiosk.display.wait_screen(ScreenId.VISUAL_WAIT)
    (vid,) = kiosk.clinic.awaiting()
    kiosk.runner.on_staff_press()
    deadline = time.monotonic() + 5
    while Sound.REMINDER_1 not in kiosk.buzzer.played and time.monotonic() < deadline:
        time.sleep(0.02)
    assert Sound.REMINDER_1 in kiosk.buzzer.played, "staff are called again"
    assert kiosk.display.current.id is ScreenId.VISUAL_WAIT
    kiosk.clinic.decide(vid, "eligible")  # on the dashboard
    kiosk.display.wait_screen(ScreenId.RESULT_OK)


def test_the_visual_check_decided_on_the_dashboard_arrives_by_long_poll(
    harness, make_profile
) -> None:
    kiosk = harness(make_profile(pin=None))
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.CHOOSE_CHECK)
    kiosk.press(UiAction.CHOOSE_VISUAL)
    kiosk.display.wait_screen(ScreenId.VISUAL_WAIT)
    (vid,) = kiosk.clinic.awaiting()
    time.sleep(0.7)  # more than one long-poll goes by while staff look
    kiosk.clinic.decide(vid, "see_staff.rejected")
    screen = kiosk.display.wait_screen(ScreenId.NEEDS_STAFF)
    assert screen.notice is Notice.VISUAL_REJECTED
    assert kiosk.clinic.requests.count(f"GET /verifications/{vid}") >= 2


def test_an_unreachable_server_is_known_before_the_patient_types(harness) -> None:
    clinic = FakeClinic(down=True)
    kiosk = harness(clinic=clinic)
    kiosk.place()
    screen = kiosk.display.wait_screen(ScreenId.SERVER_UNREACHABLE)
    assert screen.notice is Notice.SERVER_UNREACHABLE
    assert kiosk.lit()[-1] == (LightSignal.STAFF_NEEDED, 0)
    time.sleep(0.3)
    assert kiosk.clinic.requests.count("POST /challenges") == 1, "no retry loop against it"


@pytest.mark.parametrize("when", ["prefetch", "verification"])
def test_a_failing_server_worker_gives_an_event_not_a_stuck_flow(harness, when: str) -> None:
    clinic = FakeClinic()
    if when == "prefetch":
        clinic.fail_with = RuntimeError("a bug in a library")
    kiosk = harness(clinic=clinic)
    kiosk.place()
    if when == "verification":
        kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
        while "POST /challenges" not in clinic.requests:
            time.sleep(0.01)
        clinic.fail_with = RuntimeError("a bug in a library")
        kiosk.type(PIN)
    screen = kiosk.display.wait_screen(ScreenId.NEEDS_STAFF, timeout=2)
    assert screen.notice is Notice.SERVER_ERROR


def test_a_hanging_server_is_caught_by_the_checking_timeout(harness) -> None:
    hang = threading.Event()
    clinic = FakeClinic()
    settings = FlowSettings(timeouts=FlowTimeouts(checking_s=0.5))
    kiosk = harness(clinic=clinic, settings=settings)
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    time.sleep(0.1)
    clinic.hang = hang
    try:
        kiosk.type(PIN)
        screen = kiosk.display.wait_screen(ScreenId.NEEDS_STAFF, timeout=5)
        assert screen.notice is Notice.SERVER_ERROR
    finally:
        hang.set()


def test_the_challenge_is_refreshed_only_while_its_session_lasts() -> None:
    clinic = FakeClinic()
    posted: list[object] = []
    worker = ServerWorker(clinic.client(), posted.append, challenge_max_age_s=0.05)
    worker.start()
    try:
        worker.prepare(1)
        deadline = time.monotonic() + 5
        while clinic.requests.count("POST /challenges") < 3:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        worker.end_session(1)
        assert worker.flush()
        after = clinic.requests.count("POST /challenges")
        time.sleep(0.2)
        assert clinic.requests.count("POST /challenges") == after
    finally:
        worker.stop()
    assert posted == []
