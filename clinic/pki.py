"""The clinic's own certificates: the TLS CA and server certificate, the device CA and kiosks.

Two CAs, each for one purpose:

- the **TLS CA** signs the server's TLS certificate; kiosks pin it (``server-ca.pem``);
- the **device CA** signs one certificate per kiosk (EC P-256, client authentication);
  the server asks TLS clients for a certificate from it and checks every request's device
  signature against it (``clinic.device_gate``).

JPKI certificates (the patients' cards) are not here: see ``clinic.jpki``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_LIFETIME = dt.timedelta(days=3650)
SERVER_LIFETIME = dt.timedelta(days=825)
DEVICE_LIFETIME = dt.timedelta(days=825)


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, hex."""
    return certificate.fingerprint(hashes.SHA256()).hex()


def fingerprint_der(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by its owner only (created 0600, never wider)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def key_pem(key: ec.EllipticCurvePrivateKey, passphrase: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def cert_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA certificate and its key."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, common_name: str, *, now: dt.datetime | None = None) -> CertificateAuthority:
        now = now or dt.datetime.now(dt.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Onshi Kiosk clinic"),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(certificate, key)

    @classmethod
    def load(
        cls, certificate_path: Path, key_path: Path, *, passphrase: bytes | None = None
    ) -> CertificateAuthority:
        """The CA; ``passphrase`` opens a key saved with one (ValueError when it does not)."""
        certificate = x509.load_pem_x509_certificate(certificate_path.read_bytes())
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=passphrase)
        except TypeError as exc:  # a passphrase missing, or given for a key without one
            raise ValueError(f"{key_path}: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path}: expected an EC key")
        return cls(certificate, key)

    def save(
        self, certificate_path: Path, key_path: Path, *, passphrase: bytes | None = None
    ) -> None:
        """The certificate, and the key (0600; encrypted when a ``passphrase`` is given)."""
        write_private(key_path, key_pem(self.key, passphrase))
        certificate_path.write_bytes(cert_pem(self.certificate))

    def _leaf(
        self,
        subject_cn: str,
        public_key: ec.EllipticCurvePublicKey,
        *,
        usage: x509.ObjectIdentifier,
        lifetime: dt.timedelta,
        now: dt.datetime,
        san: x509.SubjectAlternativeName | None = None,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + lifetime)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def issue_server(
        self,
        key: ec.EllipticCurvePrivateKey,
        hostnames: list[str],
        *,
        now: dt.datetime | None = None,
    ) -> x509.Certificate:
        """A TLS server certificate for ``hostnames`` (DNS names or IP addresses)."""
        names: list[x509.GeneralName] = []
        for host in hostnames:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        return self._leaf(
            hostnames[0],
            key.public_key(),
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
            lifetime=SERVER_LIFETIME,
            now=now or dt.datetime.now(dt.UTC),
            san=x509.SubjectAlternativeName(names),
        )

    def issue_device(
        self,
        device_id: str,
        key: ec.EllipticCurvePrivateKey,
        *,
        now: dt.datetime | None = None,
        lifetime: dt.timedelta = DEVICE_LIFETIME,
    ) -> x509.Certificate:
        """A kiosk's certificate: its CN is the device id."""
        return self._leaf(
            device_id,
            key.public_key(),
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
            lifetime=lifetime,
            now=now or dt.datetime.now(dt.UTC),
        )

    def issued(self, certificate: x509.Certificate) -> bool:
        """True when this CA's key signed ``certificate`` and the issuer name matches."""
        if certificate.issuer != self.certificate.subject:
            return False
        try:
            certificate.verify_directly_issued_by(self.certificate)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return True


def new_device_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def valid_device_id(name: str) -> bool:
    """Device ids: 1-64 letters, digits, ``-`` and ``_`` (they become file names)."""
    return 0 < len(name) <= 64 and all(c.isascii() and (c.isalnum() or c in "-_") for c in name)
