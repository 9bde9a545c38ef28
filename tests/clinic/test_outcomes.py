"""Every card of the simulated population, checked by a kiosk against the real server."""

from __future__ import annotations

import threading

import pytest

#: population outcome -> (reason code, patient message) the server must answer
EXPECTED = {
    "valid-employee": ("eligible", "eligible"),
    "valid-family": ("eligible", "eligible"),
    "valid-national": ("eligible", "eligible"),
    "valid-late-elderly": ("eligible", "eligible"),
    "valid-elderly-20": ("eligible", "eligible"),
    "valid-elderly-30-limit": ("eligible", "eligible"),
    "valid-preschool-public-expense": ("eligible", "eligible"),
    "disqualified": ("national.invalid", "see_staff.invalid"),
    "invalid-newer-qualification": (
        "national.newer_qualification",
        "see_staff.newer_qualification",
    ),
    "not-registered": ("national.not_found", "see_staff.not_found"),
    "several-matches": ("national.multiple", "see_staff.multiple"),
    "revoked-certificate": ("certificate.revoked", "see_staff.revoked"),
    "expired-in-grace": ("eligible.in_grace", "eligible.renew_certificate"),
    "expired-past-grace": ("certificate.expired", "see_staff.expired"),
    "pin-one-try-left": ("eligible", "eligible"),
    "android": ("eligible", "eligible"),
    "iphone": ("eligible", "eligible"),
}

#: cards whose PIN cannot be used: staff compare the photo (visual mode)
VISUAL = ("pin-locked", "face-auth")


def test_every_outcome_of_the_population_is_covered(population):
    with_certificate = {c.outcome for c in population.cards if c.certificate_serial}
    assert with_certificate == set(EXPECTED) | set(VISUAL)


@pytest.mark.parametrize("outcome", sorted(EXPECTED))
def test_pin_check_answers_what_the_population_expects(clinic, outcome):
    card = clinic.population.card(outcome)
    result = clinic.kiosk().check(card.load_profile(), "pin")
    assert (result.reason_code, result.patient_message) == EXPECTED[outcome]
    assert result.state == "done"
    assert result.validity_code == card.expected_validity_code
    assert result.staff_reason
    assert result.staff_reason_en
    stored = clinic.context.service.get(result.verification_id)
    assert stored is not None
    assert stored.device_id == "kiosk-1"
    if card.expected_validity_code in (1, 2, 3, 5):
        assert stored.records, "the full record stays on the server for staff"
    if card.expected_validity_code == 5:
        assert len(stored.records) == 2
    if card.expected_validity_code == 4:
        assert stored.records == []
    if outcome in ("revoked-certificate", "expired-past-grace"):
        assert stored.records is None, "a refused certificate never reaches the national system"


def test_kiosk_sees_only_the_copay_ratio_of_a_valid_record(clinic):
    profile = clinic.card("valid-elderly-20")
    result = clinic.kiosk().check(profile, "pin")
    assert result.eligible
    assert result.copay_ratio == "020"
    assert result.copay_percent == 20
    raw = clinic.kiosk().client.wait_for_result(result.verification_id, 0)
    assert raw.copay_ratio == "020"
    # the kiosk answer carries no name, insurer or number
    answer = clinic.kiosk().http.get(f"/api/v1/verifications/{result.verification_id}").json()
    assert set(answer["record"]) == {"InsuredPartialContributionRatio"}
    assert "Name" not in str(answer)


def test_copay_ratios_follow_age_and_public_expense(clinic):
    service = clinic.context.service
    ratios = {}
    for outcome in ("valid-employee", "valid-elderly-20", "valid-preschool-public-expense"):
        result = clinic.kiosk().check(clinic.card(outcome), "pin")
        ratios[outcome] = result.copay_ratio
        record = service.get(result.verification_id).records[0]
        if outcome == "valid-preschool-public-expense":
            assert record["PreschoolClassification"] == "1"
            assert record["PublicExpenseInfo"], "the child medical subsidy travels with it"
    assert ratios == {
        "valid-employee": "030",
        "valid-elderly-20": "020",
        "valid-preschool-public-expense": "020",
    }


def test_disqualified_record_keeps_its_reason_of_loss(clinic):
    result = clinic.kiosk().check(clinic.card("disqualified"), "pin")
    record = clinic.context.service.get(result.verification_id).records[0]
    assert record["ReasonOfLoss"]
    assert record["DisqualificationDate"]


@pytest.mark.parametrize("outcome", VISUAL)
def test_visual_check_waits_for_staff_then_asks_the_national_system(clinic, outcome):
    kiosk = clinic.kiosk()
    card = clinic.population.card(outcome)
    pending = kiosk.check(card.load_profile(), "visual")
    assert pending.state == "awaiting_staff"
    assert pending.patient_message == "wait_staff"
    assert pending.validity_code is None
    assert clinic.context.service.get(pending.verification_id).records is None, (
        "no record is fetched before someone compared the photo"
    )
    still = kiosk.client.wait_for_result(pending.verification_id, 0.2)
    assert still.awaiting_staff
    done = kiosk.client.confirm(pending.verification_id, "confirmed")
    assert done.state == "done"
    assert done.validity_code == card.expected_validity_code == 1
    assert done.reason_code == "eligible"
    again = kiosk.client.confirm(pending.verification_id, "confirmed")
    assert again.verification_id == done.verification_id, "the same decision twice is one"


def test_long_poll_returns_as_soon_as_staff_decide_on_the_dashboard(clinic):
    kiosk = clinic.kiosk()
    pending = kiosk.check(clinic.card("face-auth"), "visual")
    decided = threading.Timer(
        0.3,
        clinic.context.service.decide,
        args=(pending.verification_id, "confirmed"),
        kwargs={"by": "admin"},
    )
    decided.start()
    try:
        result = kiosk.client.wait_for_result(pending.verification_id, 10)
    finally:
        decided.join()
    assert result.state == "done"
    assert result.eligible


def test_staff_rejection_ends_the_visual_check(clinic):
    kiosk = clinic.kiosk()
    pending = kiosk.check(clinic.card("pin-locked"), "visual")
    rejected = kiosk.client.confirm(pending.verification_id, "rejected")
    assert rejected.reason_code == "visual.rejected"
    assert rejected.patient_message == "see_staff.rejected"
    assert rejected.validity_code is None


def test_confirming_a_decided_check_the_other_way_is_a_conflict(clinic):
    from kiosk.errors import ServerRejected

    kiosk = clinic.kiosk()
    pending = kiosk.check(clinic.card("pin-locked"), "visual")
    kiosk.client.confirm(pending.verification_id, "confirmed")
    with pytest.raises(ServerRejected) as refused:
        kiosk.client.confirm(pending.verification_id, "rejected")
    assert refused.value.status == 409


def test_another_kiosk_cannot_read_or_confirm_a_verification(clinic):
    from kiosk.errors import ServerRejected

    pending = clinic.kiosk().check(clinic.card("face-auth"), "visual")
    other = clinic.kiosk("kiosk-2")
    with pytest.raises(ServerRejected) as unseen:
        other.client.wait_for_result(pending.verification_id, 0)
    assert unseen.value.status == 404
    with pytest.raises(ServerRejected) as unconfirmed:
        other.client.confirm(pending.verification_id, "confirmed")
    assert unconfirmed.value.status == 404
    assert clinic.context.service.get(pending.verification_id).state == "awaiting_staff"
