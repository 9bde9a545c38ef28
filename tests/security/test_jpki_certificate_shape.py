"""Smaller finding: the JPKI CA's own certificate was accepted as a patient's certificate.

The chain check only asked "did a configured CA sign this?", which the CA's self-signed
certificate answers yes. A patient's certificate must now be an end-entity certificate issued
directly by a configured CA: not the CA itself nor self-issued, BasicConstraints absent or
``ca=False``, KeyUsage present with ``digitalSignature`` and without certificate or CRL
signing. Each shape is sent by a kiosk to a real server on loopback (SQLite); a well-formed
certificate made the same way reaches the national system, so only the shape decides.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from contract.challenge import signed_message
from kiosk.sim.population import Population
from tests.support.clinic import Clinic, start_clinic, stop_clinic


@pytest.fixture(scope="module")
def clinic(population: Population, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clinic]:
    running = start_clinic("sqlite", population, tmp_path_factory.mktemp("jpki"), None)
    try:
        yield running
    finally:
        stop_clinic(running)


@pytest.fixture(scope="module")
def jpki_ca(population: Population) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """The simulated JPKI CA and its key (what an attacker does not have - but the shapes
    below must be refused even when the CA signed them)."""
    directory = population.ca_directory
    certificate = x509.load_pem_x509_certificate((directory / "jpki-ca.pem").read_bytes())
    key = serialization.load_pem_private_key((directory / "jpki-ca.key.pem").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return certificate, key


@pytest.fixture(scope="module")
def card_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def key_usage(*, digital_signature: bool, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def issue(
    ca: tuple[x509.Certificate, rsa.RSAPrivateKey],
    key: rsa.RSAPrivateKey,
    *,
    ca_flag: bool | None = False,
    usage: x509.KeyUsage | None = None,
    omit_usage: bool = False,
) -> x509.Certificate:
    ca_cert, ca_key = ca
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shape test")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
    )
    if ca_flag is not None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca_flag, path_length=None), critical=True
        )
    if not omit_usage:
        builder = builder.add_extension(usage or key_usage(digital_signature=True), critical=True)
    return builder.sign(ca_key, hashes.SHA256())


def send(clinic: Clinic, certificate: x509.Certificate, key: rsa.RSAPrivateKey, mode: str) -> str:
    """A kiosk's check with this certificate (signed by ``key`` in PIN mode); the reason."""
    kiosk = clinic.kiosk("kiosk-shape")
    challenge = kiosk.client.challenge()
    signature = None
    if mode == "pin":
        message = signed_message(challenge.nonce, kiosk.device_id, "pin")
        signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    der = certificate.public_bytes(serialization.Encoding.DER)
    return kiosk.client.verify(challenge.nonce, mode, der, signature).reason_code


@pytest.mark.parametrize("mode", ["visual", "pin"])
def test_the_jpki_ca_certificate_itself_is_not_a_patients_certificate(clinic, jpki_ca, mode):
    ca_cert, ca_key = jpki_ca
    reason = send(clinic, ca_cert, ca_key, mode)
    print(f"\nthe JPKI CA's own certificate, {mode} mode: {reason}")
    assert reason == "certificate.untrusted"


@pytest.mark.parametrize(
    ("shape", "options"),
    [
        ("a CA (BasicConstraints ca=True)", {"ca_flag": True}),
        ("no digitalSignature", {"usage": key_usage(digital_signature=False)}),
        ("certificate signing", {"usage": key_usage(digital_signature=True, cert_sign=True)}),
        ("no KeyUsage", {"omit_usage": True}),
    ],
)
def test_certificates_not_shaped_like_a_users_are_refused(
    clinic, jpki_ca, card_key, shape, options
):
    certificate = issue(jpki_ca, card_key, **options)
    reason = send(clinic, certificate, card_key, "pin")
    print(f"\n{shape}: {reason}")
    assert reason == "certificate.untrusted"


@pytest.mark.parametrize("ca_flag", [False, None], ids=["ca-false", "no-basic-constraints"])
def test_a_user_shaped_certificate_from_the_ca_passes_the_shape_check(
    clinic, jpki_ca, card_key, ca_flag
):
    certificate = issue(jpki_ca, card_key, ca_flag=ca_flag)
    assert send(clinic, certificate, card_key, "pin") == "national.not_found"
