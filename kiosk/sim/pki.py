"""A simulated JPKI user-authentication CA: the test PKI behind every virtual card.

The real 利用者証明用電子証明書 (user-authentication certificate) is issued by J-LIS under a CA
whose subject reads ``C=JP, O=JPKI, OU=JPKI for user authentication, OU=Japan Agency for Local
Authority Information Systems``. :class:`TestJpkiCa` mimics that shape with its own RSA-2048
key, and says ``Simulated`` in its common name so no certificate it issues can be mistaken for
a real one.

Its user certificates are shaped like the real ones (docs/card.md, docs/eligibility.md):

- an RSA-2048 subject key, signed with sha256WithRSAEncryption;
- no personal data in the subject: only ``C=JP`` and a random-looking serial-like common name
  (the certificate is the key the national system maps to an insured person; the person's
  name never travels in it);
- key usage ``digitalSignature``, critical; a CRL distribution point under
  ``http://crl.jpki.invalid/`` (``.invalid`` never resolves); authority and subject key
  identifiers;
- a validity chosen by the caller: the real certificate expires on the holder's fifth birthday
  after issue, which :mod:`kiosk.sim.population` reproduces.

The CA key is generated at test or demo time and written with mode 0600; no key is committed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

CA_CERTIFICATE_FILE = "jpki-ca.pem"
CA_KEY_FILE = "jpki-ca.key.pem"
CRL_FILE = "jpki-ca.crl.pem"

#: Where the simulated CA says its CRL lives. ``.invalid`` is reserved (RFC 2606): never fetched.
CRL_DISTRIBUTION_URI = "http://crl.jpki.invalid/user-authentication/simulated-ca.crl"

RSA_KEY_BITS = 2048

_JPKI_O = "JPKI"
_USER_AUTH_OU = "JPKI for user authentication"
_SIGNATURE_OU = "JPKI for digital signature"
_JLIS_OU = "Japan Agency for Local Authority Information Systems"


def new_rsa_key() -> rsa.RSAPrivateKey:
    """A fresh RSA-2048 key (e = 65537), the size of every JPKI key. About 40 ms."""
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)


def _ca_name(ou: str, cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _JPKI_O),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, _JLIS_OU),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _user_common_name(serial: int) -> str:
    """A serial-like common name that carries no personal data (derived from the serial)."""
    return hashlib.sha256(f"simulated-jpki-user:{serial}".encode()).hexdigest()[:24].upper()


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by the owner only (mode 0600), also when it existed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


class TestJpkiCa:
    """A simulated JPKI user-authentication CA: an RSA-2048 key and its self-signed certificate.

    Create one with :meth:`create`, keep it with :meth:`save`, read it back with :meth:`load`.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, key: rsa.RSAPrivateKey, certificate: x509.Certificate) -> None:
        public_key = certificate.public_key()
        if (
            not isinstance(public_key, rsa.RSAPublicKey)
            or public_key.public_numbers() != key.public_key().public_numbers()
        ):
            raise ValueError("the CA key does not match the CA certificate")
        self._key = key
        self.certificate = certificate
        self._signature_ca: x509.Certificate | None = None

    # --- making and keeping the CA ---------------------------------------------------------

    @classmethod
    def create(
        cls, *, key: rsa.RSAPrivateKey | None = None, now: datetime | None = None
    ) -> TestJpkiCa:
        """A new CA valid from ten years before ``now`` to twenty years after it.

        The long back-dating lets the population issue certificates that expired months ago
        under the same CA, as the real CA does.
        """
        key = key or new_rsa_key()
        now = now or datetime.now(UTC)
        name = _ca_name(_USER_AUTH_OU, "Simulated JPKI User Authentication CA (not a real CA)")
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(1)
            .not_valid_before(now - timedelta(days=3653))
            .not_valid_after(now + timedelta(days=7305))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    def save(self, directory: Path) -> None:
        """Write ``jpki-ca.pem`` and ``jpki-ca.key.pem`` (mode 0600) into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CA_CERTIFICATE_FILE).write_bytes(
            self.certificate.public_bytes(serialization.Encoding.PEM)
        )
        key_pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(directory / CA_KEY_FILE, key_pem)

    @classmethod
    def load(cls, directory: Path) -> TestJpkiCa:
        """Read a CA written by :meth:`save`."""
        certificate = x509.load_pem_x509_certificate((directory / CA_CERTIFICATE_FILE).read_bytes())
        key = serialization.load_pem_private_key((directory / CA_KEY_FILE).read_bytes(), None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{directory / CA_KEY_FILE} is not an RSA key")
        return cls(key, certificate)

    # --- what it issues --------------------------------------------------------------------

    @property
    def name(self) -> x509.Name:
        return self.certificate.subject

    def issue_user_certificate(
        self,
        public_key: rsa.RSAPublicKey,
        *,
        not_before: datetime,
        not_after: datetime,
        serial: int | None = None,
    ) -> x509.Certificate:
        """A user-authentication certificate for ``public_key``, shaped like a real one."""
        if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size != RSA_KEY_BITS:
            raise ValueError("JPKI user-authentication keys are RSA-2048")
        if not_after <= not_before:
            raise ValueError("not_after must be later than not_before")
        serial = serial if serial is not None else x509.random_serial_number()
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                x509.NameAttribute(NameOID.COMMON_NAME, _user_common_name(serial)),
            ]
        )
        crl_point = x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(CRL_DISTRIBUTION_URI)],
            relative_name=None,
            reasons=None,
            crl_issuer=None,
        )
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.name)
            .public_key(public_key)
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=False)
            .add_extension(_user_key_usage(), critical=True)
            .add_extension(x509.CRLDistributionPoints([crl_point]), critical=False)
            .add_extension(self._authority_key_identifier(), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .sign(self._key, hashes.SHA256())
        )

    def crl(
        self,
        revoked: Iterable[int],
        *,
        this_update: datetime,
        next_update: datetime,
        number: int = 1,
    ) -> x509.CertificateRevocationList:
        """A CRL revoking these serial numbers, each revoked at ``this_update``."""
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.name)
            .last_update(this_update)
            .next_update(next_update)
            .add_extension(self._authority_key_identifier(), critical=False)
            .add_extension(x509.CRLNumber(number), critical=False)
        )
        for serial in sorted(set(revoked)):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(this_update)
                .build()
            )
        return builder.sign(self._key, hashes.SHA256())

    @property
    def signature_ca_certificate(self) -> x509.Certificate:
        """The certificate a card shows in EF 0002 (the digital-signature CA).

        The kiosk never reads it; the virtual card carries it so the file exists as on a real
        card. It is self-signed with the same key (a simulation shortcut) and derived from the
        user-authentication CA certificate alone, so it is the same after :meth:`load`.
        """
        if self._signature_ca is None:
            name = _ca_name(_SIGNATURE_OU, "Simulated JPKI Digital Signature CA (not a real CA)")
            self._signature_ca = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(self._key.public_key())
                .serial_number(2)
                .not_valid_before(self.certificate.not_valid_before_utc)
                .not_valid_after(self.certificate.not_valid_after_utc)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(_ca_key_usage(), critical=True)
                .sign(self._key, hashes.SHA256())
            )
        return self._signature_ca

    def _authority_key_identifier(self) -> x509.AuthorityKeyIdentifier:
        ski = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _user_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
