"""The simulated JPKI CA issues certificates shaped like the real user-authentication ones."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from kiosk.sim.pki import CRL_DISTRIBUTION_URI, TestJpkiCa

NOW = datetime(2026, 3, 15, 3, 0, tzinfo=UTC)


def test_ca_subject_reads_like_the_jpki_user_authentication_ca_and_says_simulated(ca):
    subject = ca.certificate.subject
    assert subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "JP"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "JPKI"
    units = [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    assert units == [
        "JPKI for user authentication",
        "Japan Agency for Local Authority Information Systems",
    ]
    assert "Simulated" in subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert ca.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_ca_is_saved_with_a_private_key_only_the_owner_reads(ca, tmp_path):
    ca.save(tmp_path)
    key_mode = stat.S_IMODE((tmp_path / "jpki-ca.key.pem").stat().st_mode)
    assert key_mode == 0o600
    again = TestJpkiCa.load(tmp_path)
    assert again.certificate == ca.certificate
    assert again.signature_ca_certificate == ca.signature_ca_certificate


def test_a_key_that_does_not_match_the_certificate_is_refused(ca, rsa_keys):
    with pytest.raises(ValueError, match="does not match"):
        TestJpkiCa(rsa_keys[0], ca.certificate)


@pytest.fixture(scope="module")
def user_certificate(ca: TestJpkiCa, rsa_keys) -> x509.Certificate:
    return ca.issue_user_certificate(
        rsa_keys[0].public_key(),
        not_before=NOW,
        not_after=NOW + timedelta(days=5 * 365),
        serial=123456789,
    )


def test_user_certificate_carries_no_personal_data(user_certificate):
    subject = user_certificate.subject
    assert {attribute.oid for attribute in subject} == {NameOID.COUNTRY_NAME, NameOID.COMMON_NAME}
    common_name = subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert isinstance(common_name, str)
    assert len(common_name) == 24
    int(common_name, 16)  # a serial-like hexadecimal string, not a name


def test_user_certificate_has_the_real_extensions(ca, user_certificate):
    extensions = user_certificate.extensions
    key_usage = extensions.get_extension_for_class(x509.KeyUsage)
    assert key_usage.critical
    assert key_usage.value.digital_signature
    assert not key_usage.value.key_cert_sign
    points = extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert points[0].full_name == [x509.UniformResourceIdentifier(CRL_DISTRIBUTION_URI)]
    assert CRL_DISTRIBUTION_URI.startswith("http://crl.jpki.invalid/")
    aki = extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    own = extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert own == x509.SubjectKeyIdentifier.from_public_key(user_certificate.public_key())


def test_user_certificate_is_rsa_2048_signed_by_the_ca(ca, user_certificate):
    public_key = user_certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    assert public_key.key_size == 2048
    assert isinstance(user_certificate.signature_hash_algorithm, hashes.SHA256)
    user_certificate.verify_directly_issued_by(ca.certificate)
    assert user_certificate.serial_number == 123456789
    assert user_certificate.not_valid_after_utc - user_certificate.not_valid_before_utc == (
        timedelta(days=5 * 365)
    )


def test_only_rsa_2048_keys_get_a_certificate(ca):
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ValueError, match="RSA-2048"):
        ca.issue_user_certificate(
            small.public_key(), not_before=NOW, not_after=NOW + timedelta(days=1)
        )


def test_crl_lists_the_revoked_serials_and_is_signed_by_the_ca(ca):
    crl = ca.crl([7, 42, 7], this_update=NOW, next_update=NOW + timedelta(days=1))
    assert sorted(revoked.serial_number for revoked in crl) == [7, 42]
    assert crl.issuer == ca.certificate.subject
    public_key = ca.certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    assert crl.is_signature_valid(public_key)
    assert crl.get_revoked_certificate_by_serial_number(42) is not None
    assert crl.get_revoked_certificate_by_serial_number(43) is None
