"""The staff's side, the card taken at every moment, wrong PINs, lamps and buzzer on mock pins,
the server down and the reader missing - all on the real stack."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from kiosk.flow.notices import Notice
from kiosk.flow.screens import PinUnavailable, ScreenId, UiAction, UiInput
from kiosk.hw.patterns import Lamp
from kiosk.sim.profile import TimingModel
from testbed.patient import Patient, visit
from tests.support import PROJECT_ROOT
from tests.support.kiosk_under_test import KioskUnderTest, copy_profile, wait_until

ROOT = PROJECT_ROOT


def wrong_pin_for(pin: str) -> str:
    return next(p for p in ("0000", "1111", "2222") if p != pin)


# --- the visual check -------------------------------------------------------------------------


def test_the_visual_check_confirmed_by_staff_on_the_dashboard(kiosk: KioskUnderTest) -> None:
    card = kiosk.env.population.card("face-auth")
    with kiosk.env.dashboard() as dashboard:
        dashboard.login()

        def confirm_on_the_dashboard() -> None:
            found: list[str] = []
            wait_until(
                lambda: bool(found.extend(dashboard.awaiting(kiosk.kiosk.device_id)) or found),
                "the check waits in the staff queue",
            )
            dashboard.decide(found[0], "confirmed")

        patient = Patient(kiosk.log, staff=confirm_on_the_dashboard)
        result = visit(patient, card, pin=None)
    assert result.shown == "staff"
    assert [s["id"] for s in result.screens if s["id"] != "idle"][-2:] == [
        "visual_wait",
        "result_ok",
    ]


def test_staff_rejecting_on_the_dashboard_sends_the_patient_to_the_desk(
    kiosk: KioskUnderTest,
) -> None:
    card = kiosk.env.population.card("pin-locked")
    with kiosk.env.dashboard() as dashboard:

        def reject() -> None:
            found: list[str] = []
            wait_until(
                lambda: bool(found.extend(dashboard.awaiting(kiosk.kiosk.device_id)) or found),
                "the check waits in the staff queue",
            )
            dashboard.decide(found[0], "rejected")

        result = visit(Patient(kiosk.log, staff=reject), card, pin=None)
    assert result.shown == "staff"
    final = next(s for s in reversed(result.screens) if s["id"] == "needs_staff")
    assert final["notice"] == Notice.VISUAL_REJECTED.code


def test_the_visual_check_lights_amber_blinking_then_green(kiosk: KioskUnderTest) -> None:
    card = kiosk.env.population.card("pin-one-try-left")
    amber = kiosk.lamp_pin(Lamp.AMBER)
    seen: dict[str, object] = {}

    def look_then_confirm() -> None:
        samples = set()
        deadline = time.monotonic() + 1.3
        while time.monotonic() < deadline:
            samples.add(amber.state)
            time.sleep(0.05)
        seen["amber"] = samples
        seen["others"] = {k: v for k, v in kiosk.lit().items() if k is not Lamp.AMBER}
        kiosk.button.press()

    visit(Patient(kiosk.log, staff=look_then_confirm), card, pin=None)
    assert seen["amber"] == {0, 1}, "amber blinks while staff are awaited"
    assert not any(seen["others"].values())  # type: ignore[union-attr]


# --- wrong PINs -----------------------------------------------------------------------------


def test_wrong_pins_count_down_to_the_floor_and_the_last_try_is_kept(
    kiosk: KioskUnderTest, tmp_path: Path
) -> None:
    profile = copy_profile(kiosk.env.population.card("valid-employee").load_profile(), tmp_path)
    assert profile.pin is not None
    wrong = wrong_pin_for(profile.pin)
    seq = kiosk.last_seq()
    slot = kiosk.place(profile)
    try:
        mark = kiosk.log.mark()
        first = kiosk.wait(ScreenId.PIN_ENTRY, mark)
        assert first.tries_left == 3
        kiosk.patient.type_pin(wrong)
        again = kiosk.log.wait_for(lambda s: s.id is ScreenId.PIN_ENTRY and s.wrong_pin, after=mark)
        assert again.tries_left == 2
        kiosk.patient.type_pin(wrong)
        floor = kiosk.wait(ScreenId.CHOOSE_CHECK, mark)
        assert floor.pin_unavailable is PinUnavailable.AT_FLOOR
        assert floor.tries_left == 1
        assert type(profile).load(profile.path).pin_tries_left == 1, "the card keeps one try"
        kiosk.log.touch(UiInput(UiAction.CHOOSE_VISUAL))
        kiosk.wait(ScreenId.VISUAL_WAIT, mark)
        kiosk.button.press()
        kiosk.wait(ScreenId.RESULT_OK, mark)
    finally:
        slot.remove()
    kiosk.idle()
    assert [p["tries_left"] for k, p in kiosk.records(seq) if k == "pin.wrong"] == [2, 1]


def test_a_correct_pin_after_a_wrong_one_resets_the_card(
    kiosk: KioskUnderTest, tmp_path: Path
) -> None:
    profile = copy_profile(kiosk.env.population.card("valid-family").load_profile(), tmp_path)
    assert profile.pin is not None
    slot = kiosk.place(profile)
    try:
        mark = kiosk.log.mark()
        kiosk.wait(ScreenId.PIN_ENTRY, mark)
        kiosk.patient.type_pin(wrong_pin_for(profile.pin))
        kiosk.log.wait_for(lambda s: s.id is ScreenId.PIN_ENTRY and s.wrong_pin, after=mark)
        kiosk.patient.type_pin(profile.pin)
        kiosk.wait(ScreenId.RESULT_OK, mark)
    finally:
        slot.remove()
    kiosk.idle()
    assert type(profile).load(profile.path).pin_tries_left == 3


# --- the card taken at every moment --------------------------------------------------------


@pytest.mark.parametrize(
    "moment",
    [
        "reading",
        "pin_entry",
        "checking",
        "choose_check",
        "visual_wait",
        "result_ok",
        "needs_staff",
        "error",
    ],
)
def test_the_card_taken_at_any_moment_gives_a_clear_message_then_idle(
    kiosk: KioskUnderTest, tmp_path: Path, moment: str
) -> None:
    outcome = {
        "choose_check": "pin-locked",
        "visual_wait": "pin-locked",
        "needs_staff": "not-registered",
        "error": "non-jpki",
    }.get(moment, "valid-employee")
    profile = copy_profile(kiosk.env.population.card(outcome).load_profile(), tmp_path)
    timing = None
    if moment == "reading":
        timing = TimingModel(apdu_latency_s=0.4)
    elif moment == "checking":
        timing = TimingModel(signature_s=1.5)
    slot = kiosk.place(profile, timing=timing)
    mark = kiosk.log.mark()
    try:
        if moment in ("pin_entry", "checking", "result_ok", "needs_staff"):
            kiosk.wait(ScreenId.PIN_ENTRY, mark)
            assert profile.pin is not None
            kiosk.patient.type_pin(profile.pin[: 2 if moment == "pin_entry" else 4])
        if moment in ("visual_wait",):
            kiosk.wait(ScreenId.CHOOSE_CHECK, mark)
            kiosk.log.touch(UiInput(UiAction.CHOOSE_VISUAL))
        kiosk.wait(ScreenId(moment), mark)
        if moment == "pin_entry":
            kiosk.log.wait_for(lambda s: s.digits_typed == 2, after=mark)
    finally:
        slot.remove()
    if moment in ("result_ok", "needs_staff", "error"):
        after = kiosk.log.mark()
        kiosk.idle()
        assert ScreenId.REMOVED_EARLY not in kiosk.ids_since(after)
    else:
        screen = kiosk.wait(ScreenId.REMOVED_EARLY, mark)
        assert screen.notice is Notice.CARD_REMOVED_EARLY
        kiosk.idle()
    assert kiosk.ids_since(mark)[-1] is ScreenId.IDLE


# --- lamps and buzzer on the mock pins --------------------------------------------------------


class LookingPatient(Patient):
    """A patient who, at the result, glances at the kiosk's lamps."""

    def __init__(self, kiosk: KioskUnderTest) -> None:
        super().__init__(kiosk.log, staff=kiosk.button.press)
        self.kiosk = kiosk
        self.seen: dict[Lamp, bool] = {}

    def until_final(self, pin, mark):  # type: ignore[no-untyped-def]
        final = super().until_final(pin, mark)
        time.sleep(0.05)
        self.seen = self.kiosk.lit()
        return final


def test_lamps_say_ready_eligible_and_error_on_the_pins(kiosk: KioskUnderTest) -> None:
    kiosk.idle()
    ready = {Lamp.GREEN: False, Lamp.AMBER: False, Lamp.RED: False, Lamp.BLUE: True}
    wait_until(lambda: kiosk.lit() == ready, "blue: ready")
    for outcome, lamp in (
        ("valid-elderly-20", Lamp.GREEN),
        ("non-jpki", Lamp.RED),
        ("revoked-certificate", Lamp.AMBER),
    ):
        card = kiosk.env.population.card(outcome)
        patient = LookingPatient(kiosk)
        visit(patient, card, pin=card.load_profile().pin)
        assert patient.seen == {k: k is lamp for k in Lamp}, outcome


def test_a_card_left_behind_is_reminded_on_lamp_and_buzzer_until_taken(
    kiosk: KioskUnderTest, tmp_path: Path
) -> None:
    # the e2e kiosk's [card_left]: levels at 0.5, 1.0 and 1.5 s after the result
    profile = copy_profile(kiosk.env.population.card("valid-employee").load_profile(), tmp_path)
    buzzer = kiosk.buzzer_pin()
    slot = kiosk.place(profile)
    try:
        mark = kiosk.log.mark()
        kiosk.wait(ScreenId.PIN_ENTRY, mark)
        kiosk.patient.type_pin(profile.pin or "")
        kiosk.wait(ScreenId.RESULT_OK, mark)
        buzzer.clear_states()
        level3 = kiosk.log.wait_for(
            lambda s: s.id is ScreenId.TAKE_CARD and s.reminder_level == 3, after=mark
        )
        assert level3.reminder_level == 3
        amber, green = kiosk.lamp_pin(Lamp.AMBER), kiosk.lamp_pin(Lamp.GREEN)
        samples, greens = set(), set()
        for _ in range(12):
            samples.add(amber.state)
            greens.add(green.state)
            time.sleep(0.02)
        assert samples == {0, 1}, "amber blinks fast while the card is left"
        assert greens == {0}, "never green: green means eligible from across the room"
        time.sleep(0.8)
        history = list(buzzer.states)
        # gpiozero's mock pins record each state with the time since the previous change
        beeps = [
            round(b.timestamp, 2) for a, b in itertools.pairwise(history) if a.state and not b.state
        ]
        tiers = [min((0.15, 0.2, 0.3), key=lambda t: abs(t - beep)) for beep in beeps]
        firsts = sorted({t: tiers.index(t) for t in tiers}.items(), key=lambda kv: kv[1])
        # REMINDER_1: 0.15 s beeps, REMINDER_2: 0.2 s, REMINDER_3: 0.3 s - in that order
        assert [t for t, _ in firsts] == [0.15, 0.2, 0.3], beeps
    finally:
        slot.remove()
    kiosk.wait(ScreenId.RESULT_OK, kiosk.log.mark() - 1)
    kiosk.idle()


# --- the server down, the reader missing ------------------------------------------------------


def test_the_server_down_is_told_to_the_patient_and_staff_then_it_comes_back(
    kiosk: KioskUnderTest,
) -> None:
    card = kiosk.env.population.card("valid-late-elderly")
    pin = card.load_profile().pin
    kiosk.env.clinic.stop()
    try:
        # a patient types a key about every half second
        result = visit(Patient(kiosk.log, staff=kiosk.button.press, pause_s=0.5), card, pin=pin)
        assert result.shown == "staff"
        final = next(s for s in result.screens if s["id"] == "server_unreachable")
        assert final["notice"] == Notice.SERVER_UNREACHABLE.code
        ids = [s["id"] for s in result.screens]
        assert "checking" not in ids, "told before the fourth digit: no PIN was sent for nothing"
    finally:
        kiosk.env.clinic.start()
    again = visit(kiosk.patient, card, pin=pin)
    assert again.shown == "ok"


def test_a_reader_that_is_not_there_is_shown_at_start(fresh_kiosk) -> None:
    # a reader name nobody has: this kiosk never competes for the vpcd card
    kiosk = fresh_kiosk(reader="No Such Reader 00 00")
    screen = kiosk.log.wait_for(lambda s: s.id is ScreenId.READER_MISSING)
    assert screen.notice is Notice.READER_MISSING
    wait_until(lambda: kiosk.lit()[Lamp.AMBER], "amber: staff needed")
    assert kiosk.kiosk.card.reader_state() == "absent"


def _pcscd_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-x", "pcscd"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_pcscd_stopped_shows_the_reader_missing_and_its_return_serves_again(
    kiosk: KioskUnderTest,
) -> None:
    kiosk.idle()
    mark = kiosk.log.mark()
    pids = _pcscd_pids()
    assert pids, "pcscd runs"
    try:
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not _pcscd_pids(), "pcscd stopped")
        kiosk.wait(ScreenId.READER_MISSING, mark)
        assert kiosk.kiosk.card.reader_state() in ("pcscd_gone", "absent")
    finally:
        subprocess.run(["sh", str(ROOT / "tests/services/pcscd.sh")], check=True, timeout=30)
    kiosk.wait(ScreenId.IDLE, mark, timeout_s=20)
    card = kiosk.env.population.card("iphone")
    assert visit(kiosk.patient, card, pin=card.load_profile().pin).shown == "ok"
