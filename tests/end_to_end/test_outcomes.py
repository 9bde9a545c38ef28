"""Every outcome of the population through pcscd, vpcd and the real clinic server over TLS.

The patient does what each screen offers; where the route needs staff, staff confirm the
visual check with the kiosk's button (a GPIO pin driven on gpiozero's MockFactory).
"""

from __future__ import annotations

import pytest

from kiosk.flow.screens import PinUnavailable, ScreenId
from kiosk.sim.outcomes import OUTCOMES
from testbed.patient import visit
from tests.support.kiosk_under_test import KioskUnderTest

NOTICES = {
    "disqualified": "K-211",
    "invalid-newer-qualification": "K-212",
    "not-registered": "K-213",
    "several-matches": "K-214",
    "revoked-certificate": "K-201",
    "expired-past-grace": "K-202",
    "non-jpki": "K-102",
}
VISUAL_ONLY = {
    "pin-locked": PinUnavailable.LOCKED,
    "pin-one-try-left": PinUnavailable.AT_FLOOR,
    "face-auth": PinUnavailable.NO_PIN,
}


@pytest.mark.parametrize("outcome", [o.name for o in OUTCOMES])
def test_every_outcome_ends_on_its_route(kiosk: KioskUnderTest, outcome: str) -> None:
    card = kiosk.env.population.card(outcome)
    profile = card.load_profile()
    seq = kiosk.last_seq()
    result = visit(kiosk.patient, card, pin=profile.pin)
    assert result.shown == card.expected_route, result.screens
    screens = result.screens
    final = next(s for s in reversed(screens) if s["id"] != "idle")
    if outcome in NOTICES:
        assert final["notice"] == NOTICES[outcome]
    if outcome in VISUAL_ONLY:
        choose = next(s for s in screens if s["id"] == "choose_check")
        assert choose["pin_unavailable"] == VISUAL_ONLY[outcome].value
        assert "visual_wait" in [s["id"] for s in screens]
        assert not [s for s in screens if s["id"] == "pin_entry"], "no PIN is ever asked for"
    if outcome == "expired-in-grace":
        assert final.get("renew_certificate") is True
    if card.expected_route == "ok" or (card.expected_route == "staff" and outcome in VISUAL_ONLY):
        assert final["id"] == "result_ok"
    pin_screens = [s for s in screens if s["id"] == "pin_entry"]
    if pin_screens:
        assert pin_screens[0]["tries_left"] == 3, "the tries left show before the first digit"
    outcomes = [p for k, p in kiosk.records(seq) if k == "verification.outcome"]
    assert len(outcomes) == 1
    assert outcomes[0]["route"] == card.expected_route
    if card.expected_validity_code is not None and outcomes[0]["route"] == "ok":
        assert outcomes[0]["validity_code"] == card.expected_validity_code


def test_after_a_visual_check_the_next_patient_is_asked_for_the_pin(
    kiosk: KioskUnderTest,
) -> None:
    locked = kiosk.env.population.card("pin-locked")
    visit(kiosk.patient, locked, pin=None)
    card = kiosk.env.population.card("valid-family")
    mark = kiosk.log.mark()
    result = visit(kiosk.patient, card, pin=card.load_profile().pin)
    assert result.shown == "ok"
    assert ScreenId.PIN_ENTRY in kiosk.ids_since(mark)
    assert ScreenId.CHOOSE_CHECK not in kiosk.ids_since(mark)


def test_records_carry_codes_and_counts_never_a_pin_or_personal_data(
    kiosk: KioskUnderTest,
) -> None:
    card = kiosk.env.population.card("valid-national")
    profile = card.load_profile()
    seq = kiosk.last_seq()
    visit(kiosk.patient, card, pin=profile.pin)
    records = kiosk.records(seq)
    kinds = [k for k, _ in records]
    assert "card.inserted" in kinds
    assert "flow.transition" in kinds
    assert "verification.outcome" in kinds
    text = repr(records)
    assert profile.pin is not None
    assert profile.pin not in text
    for record in [p for _, p in records]:
        for value in record.values():
            assert not (isinstance(value, str) and not value.isascii()), "no names, addresses"
    transitions = [p for k, p in records if k == "flow.transition"]
    assert all({"from", "to", "reason", "ms"} <= set(p) for p in transitions)
