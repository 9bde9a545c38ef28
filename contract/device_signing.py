"""Which kiosk is calling: requests signed with the device key.

Mutual TLS keeps strangers off the clinic server; on top of it every request a kiosk sends
carries its device certificate and an ECDSA signature, made with the same device key, over a
canonical form of the request::

    onshi-request-v2 LF METHOD LF TARGET LF TIMESTAMP LF REQUEST_ID LF SHA256(BODY) hex

TARGET is the path with its query string, TIMESTAMP whole seconds since the epoch, REQUEST_ID
32 lowercase hex digits drawn at random for each request (``new_request_id``). The server
checks the signature and the clock skew here (``verify_request``) and then, itself, that the
certificate is the one the TLS connection presented, that the clinic's device CA issued it
and it is not revoked, and that the request id was not seen before within the skew window
(a captured request cannot be sent again).

Both halves live in this one pure module so they cannot drift apart.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from contract.errors import ConfigError, DeviceAuthError

HEADER_CERTIFICATE = "Onshi-Device-Certificate"
HEADER_TIMESTAMP = "Onshi-Timestamp"
HEADER_SIGNATURE = "Onshi-Signature"
HEADER_REQUEST_ID = "Onshi-Request-Id"

#: How far the kiosk's clock may be from the server's, in seconds.
MAX_SKEW_S = 300

_PREFIX = b"onshi-request-v2"

_REQUEST_ID = re.compile(r"[0-9a-f]{32}")


def new_request_id() -> str:
    """A fresh request id: 128 random bits as 32 lowercase hex digits."""
    return secrets.token_hex(16)


def canonical_request(
    method: str, target: str, timestamp: int, request_id: str, body: bytes
) -> bytes:
    """The bytes a device signs for one request."""
    return b"\n".join(
        [
            _PREFIX,
            method.upper().encode("ascii"),
            target.encode("utf-8"),
            str(timestamp).encode("ascii"),
            request_id.encode("ascii"),
            hashlib.sha256(body).hexdigest().encode("ascii"),
        ]
    )


def device_id_of(certificate: x509.Certificate) -> str:
    """The device id a device certificate names (its subject common name)."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1 or not isinstance(names[0].value, str) or not names[0].value:
        raise DeviceAuthError("device certificate has no single common name")
    return names[0].value


@dataclass(frozen=True)
class DeviceIdentity:
    """A kiosk's identity: its device certificate and the matching private key."""

    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    @property
    def device_id(self) -> str:
        return device_id_of(self.certificate)

    @classmethod
    def load(cls, certificate_path: Path, key_path: Path) -> DeviceIdentity:
        """Read a PEM certificate and PEM key; a broken or mismatched pair is a ConfigError."""
        try:
            certificate = x509.load_pem_x509_certificate(certificate_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the device identity: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"{key_path}: the device key must be an EC key")
        if key.public_key() != certificate.public_key():
            raise ConfigError(f"{key_path} does not belong to {certificate_path}")
        return cls(certificate, key)

    def sign_request(
        self,
        method: str,
        target: str,
        body: bytes,
        *,
        now: float,
        request_id: str | None = None,
    ) -> dict[str, str]:
        """The headers that prove this device sent this request, once, at ``now``.

        Each call draws a new request id unless one is given (tests give one to replay).
        """
        timestamp = int(now)
        request_id = request_id if request_id is not None else new_request_id()
        if not _REQUEST_ID.fullmatch(request_id):
            raise ValueError("a request id is 32 lowercase hex digits")
        signature = self.private_key.sign(
            canonical_request(method, target, timestamp, request_id, body),
            ec.ECDSA(hashes.SHA256()),
        )
        cert_der = self.certificate.public_bytes(serialization.Encoding.DER)
        return {
            HEADER_CERTIFICATE: base64.b64encode(cert_der).decode("ascii"),
            HEADER_TIMESTAMP: str(timestamp),
            HEADER_REQUEST_ID: request_id,
            HEADER_SIGNATURE: base64.b64encode(signature).decode("ascii"),
        }


@dataclass(frozen=True)
class SignedRequest:
    """What a valid device signature tells the server."""

    device_id: str
    certificate: x509.Certificate
    #: the certificate as the request carried it (DER), to compare with the TLS client's
    certificate_der: bytes
    timestamp: int
    #: unique per request: the server refuses one it has seen within the skew window
    request_id: str


def verify_request(
    headers: Mapping[str, str],
    method: str,
    target: str,
    body: bytes,
    *,
    now: float,
    max_skew_s: int = MAX_SKEW_S,
) -> SignedRequest:
    """Check a request's device signature and its age.

    ``headers`` must look names up case-insensitively (Starlette's and httpx's do). The
    caller still has to check that the certificate is the TLS client certificate of the
    connection, that it chains to its device CA and is not revoked, and that the request id
    is new: this function only proves the holder of the certificate's key signed the
    request recently.
    """
    try:
        cert_b64 = headers[HEADER_CERTIFICATE]
        timestamp_text = headers[HEADER_TIMESTAMP]
        request_id = headers[HEADER_REQUEST_ID]
        signature_b64 = headers[HEADER_SIGNATURE]
    except KeyError as exc:
        raise DeviceAuthError(f"missing header {exc.args[0]}") from None
    if not _REQUEST_ID.fullmatch(request_id):
        raise DeviceAuthError("malformed request id: 32 lowercase hex digits expected")
    try:
        certificate_der = base64.b64decode(cert_b64, validate=True)
        certificate = x509.load_der_x509_certificate(certificate_der)
        signature = base64.b64decode(signature_b64, validate=True)
        timestamp = int(timestamp_text)
    except ValueError as exc:
        raise DeviceAuthError(f"malformed device signature headers: {exc}") from None
    if abs(now - timestamp) > max_skew_s:
        raise DeviceAuthError(f"request timestamp is {int(now - timestamp)} s off")
    public_key = certificate.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise DeviceAuthError("device certificate does not hold an EC key")
    try:
        public_key.verify(
            signature,
            canonical_request(method, target, timestamp, request_id, body),
            ec.ECDSA(hashes.SHA256()),
        )
    except InvalidSignature:
        raise DeviceAuthError("device signature does not verify") from None
    return SignedRequest(
        device_id_of(certificate), certificate, certificate_der, timestamp, request_id
    )
