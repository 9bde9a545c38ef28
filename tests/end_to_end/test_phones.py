"""Both kinds of iPhone through pcscd, vpcd and the real clinic server over TLS: one that
reports the PIN verified after Face ID (no PIN pad, the phone signs), one that does not (the
PIN pad, or staff)."""

from __future__ import annotations

from kiosk.flow.screens import Screen, ScreenId, UiAction, UiInput
from kiosk.flow.views import staff_call_of
from kiosk.sim.profile import CardProfile
from testbed.patient import Patient, visit
from tests.support.kiosk_under_test import KioskUnderTest


def test_an_iphone_after_face_id_is_checked_without_a_pin(kiosk: KioskUnderTest) -> None:
    card = kiosk.env.population.card("iphone-face-id")
    seq = kiosk.last_seq()
    # the patient types nothing: were a PIN pad shown, this patient would cancel it
    result = visit(kiosk.patient, card, pin=None)
    assert result.shown == "ok", result.screens
    ids = [s["id"] for s in result.screens]
    assert "pin_entry" not in ids
    assert "choose_check" not in ids
    assert "result_ok" in ids
    kinds = [kind for kind, _ in kiosk.records(seq)]
    assert "pin.verified_on_phone" in kinds
    assert "pin.wrong" not in kinds
    outcome = [p for k, p in kiosk.records(seq) if k == "verification.outcome"]
    assert outcome[-1]["route"] == "ok"
    assert outcome[-1]["validity_code"] == card.expected_validity_code
    assert CardProfile.load(card.profile_path).pin_tries_left == 3


def test_an_iphone_without_face_id_answer_gets_the_pin_pad(kiosk: KioskUnderTest) -> None:
    card = kiosk.env.population.card("iphone")
    seq = kiosk.last_seq()
    result = visit(kiosk.patient, card, pin=card.load_profile().pin)
    assert result.shown == "ok", result.screens
    pin_screens = [s for s in result.screens if s["id"] == "pin_entry"]
    assert pin_screens
    assert pin_screens[0]["tries_left"] == 3
    assert "pin.verified_on_phone" not in [kind for kind, _ in kiosk.records(seq)]


class StaffChoosingPatient(Patient):
    """At the PIN pad, asks for staff instead of typing; notes the staff call it is shown."""

    def __init__(self, kiosk: KioskUnderTest) -> None:
        super().__init__(kiosk.log, staff=self._confirm)
        self.kiosk = kiosk
        self.reasons: list[str] = []

    def _confirm(self) -> None:
        state = self.kiosk.kiosk.runner.state
        call = staff_call_of(state)
        if call is not None:
            self.reasons.append(call.reason)
        self.kiosk.button.press()

    def until_final(self, pin: str | None, mark: int) -> Screen:
        seen = mark
        while True:
            screen = self.log.wait_change(seen, self.timeout_s)
            seen += 1
            if screen.id is ScreenId.PIN_ENTRY and screen.digits_typed == 0:
                self.log.touch(UiInput(UiAction.CHOOSE_VISUAL))
                break
        return super().until_final(pin, seen)


def test_an_iphone_without_face_id_answer_may_go_to_staff(kiosk: KioskUnderTest) -> None:
    card = kiosk.env.population.card("iphone")
    tries_before = CardProfile.load(card.profile_path).pin_tries_left
    patient = StaffChoosingPatient(kiosk)
    result = visit(patient, card, pin=None)
    ids = [s["id"] for s in result.screens if s["id"] != "idle"]
    assert "visual_wait" in ids
    assert ids[-1] == "result_ok"
    assert result.shown == "staff"
    assert patient.reasons == ["visual_check.phone"]
    assert CardProfile.load(card.profile_path).pin_tries_left == tries_before
