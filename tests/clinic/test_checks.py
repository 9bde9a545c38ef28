"""The server's checks, in order, each stopping with its own reason code (real server)."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from clinic.national.simulated import load_insured, read_insured_jsonl, revoke_insured
from contract.challenge import signed_message
from kiosk.sim.pki import TestJpkiCa, new_rsa_key


def test_a_replayed_nonce_is_refused(clinic):
    kiosk = clinic.kiosk()
    profile = clinic.card("valid-employee")
    challenge = kiosk.client.challenge()
    signature = profile.user_auth_key().sign(
        signed_message(challenge.nonce, kiosk.device_id, "pin"), padding.PKCS1v15(), hashes.SHA256()
    )
    first = kiosk.client.verify(challenge.nonce, "pin", profile.user_auth_certificate, signature)
    assert first.eligible
    replay = kiosk.client.verify(challenge.nonce, "pin", profile.user_auth_certificate, signature)
    assert replay.reason_code == "nonce.used"
    assert replay.patient_message == "retry"
    assert replay.validity_code is None
    assert replay.temporary


def test_an_expired_nonce_is_refused(clinic, clock):
    kiosk = clinic.kiosk()
    profile = clinic.card("valid-employee")
    challenge = kiosk.client.challenge()
    assert challenge.expires_at - dt.datetime.now(dt.UTC) <= dt.timedelta(seconds=61)
    clock.offset = 61.0
    signature = profile.user_auth_key().sign(
        signed_message(challenge.nonce, kiosk.device_id, "pin"), padding.PKCS1v15(), hashes.SHA256()
    )
    result = kiosk.client.verify(challenge.nonce, "pin", profile.user_auth_certificate, signature)
    assert result.reason_code == "nonce.expired"
    assert result.patient_message == "retry"


def test_a_nonce_issued_to_another_kiosk_is_unknown_here(clinic):
    mine, other = clinic.kiosk(), clinic.kiosk("kiosk-2")
    profile = clinic.card("valid-employee")
    challenge = other.client.challenge()
    signature = profile.user_auth_key().sign(
        signed_message(challenge.nonce, mine.device_id, "pin"), padding.PKCS1v15(), hashes.SHA256()
    )
    result = mine.client.verify(challenge.nonce, "pin", profile.user_auth_certificate, signature)
    assert result.reason_code == "nonce.unknown"


def test_a_nonce_never_issued_is_unknown(clinic):
    profile = clinic.card("valid-employee")
    result = clinic.kiosk().client.verify(
        secrets.token_bytes(32), "pin", profile.user_auth_certificate, b"\x00" * 256
    )
    assert result.reason_code == "nonce.unknown"


def test_nonces_are_32_random_bytes_and_never_repeat(clinic):
    client = clinic.kiosk().client
    nonces = {client.challenge().nonce for _ in range(20)}
    assert len(nonces) == 20
    assert {len(n) for n in nonces} == {32}


def test_a_signature_by_another_key_is_refused(clinic):
    kiosk = clinic.kiosk()
    profile = clinic.card("valid-employee")
    challenge = kiosk.client.challenge()
    stranger = new_rsa_key().sign(
        signed_message(challenge.nonce, kiosk.device_id, "pin"), padding.PKCS1v15(), hashes.SHA256()
    )
    result = kiosk.client.verify(challenge.nonce, "pin", profile.user_auth_certificate, stranger)
    assert result.reason_code == "signature.invalid"
    assert result.patient_message == "see_staff.signature"
    assert clinic.context.service.get(result.verification_id).records is None


@pytest.mark.parametrize(
    ("device", "mode"),
    [("kiosk-2", "pin"), ("kiosk-1", "visual")],
    ids=["signed-for-another-kiosk", "signed-for-another-mode"],
)
def test_a_signature_bound_to_another_kiosk_or_mode_is_refused(clinic, device, mode):
    kiosk = clinic.kiosk()
    profile = clinic.card("valid-employee")
    challenge = kiosk.client.challenge()
    signature = profile.user_auth_key().sign(
        signed_message(challenge.nonce, device, mode), padding.PKCS1v15(), hashes.SHA256()
    )
    result = kiosk.client.verify(challenge.nonce, "pin", profile.user_auth_certificate, signature)
    assert result.reason_code == "signature.invalid"


def test_pin_mode_without_a_signature_is_refused(clinic):
    kiosk = clinic.kiosk()
    challenge = kiosk.client.challenge()
    result = kiosk.client.verify(
        challenge.nonce, "pin", clinic.card("valid-employee").user_auth_certificate, None
    )
    assert result.reason_code == "signature.missing"


def test_a_visual_check_carrying_a_signature_is_a_malformed_request(clinic):
    kiosk = clinic.kiosk()
    challenge = kiosk.client.challenge()
    answer = kiosk.http.post(
        "/api/v1/verifications",
        json={
            "nonce": base64.b64encode(challenge.nonce).decode(),
            "mode": "visual",
            "certificate": base64.b64encode(
                clinic.card("valid-employee").user_auth_certificate
            ).decode(),
            "signature": base64.b64encode(b"x" * 256).decode(),
        },
    )
    assert answer.status_code == 422


def test_a_certificate_from_a_foreign_ca_is_refused(clinic):
    kiosk = clinic.kiosk()
    foreign = TestJpkiCa.create()
    key = new_rsa_key()
    now = dt.datetime.now(dt.UTC)
    certificate = foreign.issue_user_certificate(
        key.public_key(),
        not_before=now - dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=30),
    )
    challenge = kiosk.client.challenge()
    signature = key.sign(
        signed_message(challenge.nonce, kiosk.device_id, "pin"), padding.PKCS1v15(), hashes.SHA256()
    )
    result = kiosk.client.verify(
        challenge.nonce, "pin", certificate.public_bytes(serialization.Encoding.DER), signature
    )
    assert result.reason_code == "certificate.untrusted"
    assert result.patient_message == "see_staff.card_not_accepted"


def test_a_certificate_that_does_not_parse_is_refused(clinic):
    kiosk = clinic.kiosk()
    challenge = kiosk.client.challenge()
    result = kiosk.client.verify(challenge.nonce, "visual", b"\x30\x03garbage", None)
    assert result.reason_code == "certificate.malformed"


def test_the_nonce_is_checked_before_the_signature(clinic):
    profile = clinic.card("revoked-certificate")
    result = clinic.kiosk().client.verify(
        secrets.token_bytes(32), "pin", profile.user_auth_certificate, b"\x00" * 256
    )
    assert result.reason_code == "nonce.unknown"


def test_the_signature_is_checked_before_the_revocation(clinic):
    kiosk = clinic.kiosk()
    profile = clinic.card("revoked-certificate")
    challenge = kiosk.client.challenge()
    result = kiosk.client.verify(
        challenge.nonce, "pin", profile.user_auth_certificate, b"\x01" * 256
    )
    assert result.reason_code == "signature.invalid"


def test_a_revoked_card_is_refused_in_visual_mode_too(clinic):
    result = clinic.kiosk().check(clinic.card("revoked-certificate"), "visual")
    assert result.reason_code == "certificate.revoked"
    assert result.state == "done"


def test_an_expired_certificate_past_grace_is_refused_in_visual_mode_too(clinic):
    result = clinic.kiosk().check(clinic.card("expired-past-grace"), "visual")
    assert result.reason_code == "certificate.expired"


def test_a_national_outage_sends_the_patient_to_staff_without_a_bill(clinic):
    plan = clinic.context.connector.plan
    plan.down = True
    try:
        result = clinic.kiosk().check(clinic.card("valid-national"), "pin")
    finally:
        plan.down = False
    assert result.reason_code == "national.unavailable"
    assert result.patient_message == "see_staff.system_down"
    assert result.temporary
    assert "10割" in result.staff_reason
    assert clinic.kiosk().check(clinic.card("valid-national"), "pin").eligible


def test_a_slow_national_system_still_answers(clinic):
    plan = clinic.context.connector.plan
    plan.latency_s = 0.2
    try:
        started = time.monotonic()
        result = clinic.kiosk().check(clinic.card("valid-family"), "pin")
        elapsed = time.monotonic() - started
    finally:
        plan.latency_s = 0.0
    assert result.eligible
    assert elapsed >= 0.2


def test_a_certificate_the_national_side_revoked_is_refused(clinic):
    card = clinic.population.card("iphone")
    db = clinic.context.db
    assert revoke_insured(db, now=time.time(), card_id=card.id) == 1
    try:
        result = clinic.kiosk().check(card.load_profile(), "pin")
    finally:
        load_insured(db, read_insured_jsonl(clinic.population.insured_path), now=time.time())
    assert result.reason_code == "national.revoked"
    assert result.patient_message == "see_staff.revoked"
    assert clinic.kiosk().check(card.load_profile(), "pin").eligible
