"""Which kiosk is calling: requests signed with the device key.

Mutual TLS keeps strangers off the clinic server, but the ASGI servers we run do not hand the
verified client certificate to the application. So every request a kiosk sends also carries
its device certificate and an ECDSA signature, made with the same device key, over a
canonical form of the request::

    onshi-request-v1 LF METHOD LF TARGET LF TIMESTAMP LF SHA256(BODY) hex

TARGET is the path with its query string, TIMESTAMP whole seconds since the epoch. The server
checks the signature and the clock skew here (``verify_request``) and then, itself, that the
certificate was issued by the clinic's device CA and is not revoked.

Both halves live in this one pure module so they cannot drift apart.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kiosk.errors import ConfigError, DeviceAuthError

HEADER_CERTIFICATE = "Onshi-Device-Certificate"
HEADER_TIMESTAMP = "Onshi-Timestamp"
HEADER_SIGNATURE = "Onshi-Signature"

#: How far the kiosk's clock may be from the server's, in seconds.
MAX_SKEW_S = 300

_PREFIX = b"onshi-request-v1"


def canonical_request(method: str, target: str, timestamp: int, body: bytes) -> bytes:
    """The bytes a device signs for one request."""
    return b"\n".join(
        [
            _PREFIX,
            method.upper().encode("ascii"),
            target.encode("utf-8"),
            str(timestamp).encode("ascii"),
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

    def sign_request(self, method: str, target: str, body: bytes, *, now: float) -> dict[str, str]:
        """The headers that prove this device sent this request at ``now``."""
        timestamp = int(now)
        signature = self.private_key.sign(
            canonical_request(method, target, timestamp, body), ec.ECDSA(hashes.SHA256())
        )
        cert_der = self.certificate.public_bytes(serialization.Encoding.DER)
        return {
            HEADER_CERTIFICATE: base64.b64encode(cert_der).decode("ascii"),
            HEADER_TIMESTAMP: str(timestamp),
            HEADER_SIGNATURE: base64.b64encode(signature).decode("ascii"),
        }


@dataclass(frozen=True)
class SignedRequest:
    """What a valid device signature tells the server."""

    device_id: str
    certificate: x509.Certificate
    timestamp: int


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
    caller still has to check that the certificate chains to its device CA and is not
    revoked: this function only proves the holder of the certificate's key signed the
    request recently.
    """
    try:
        cert_b64 = headers[HEADER_CERTIFICATE]
        timestamp_text = headers[HEADER_TIMESTAMP]
        signature_b64 = headers[HEADER_SIGNATURE]
    except KeyError as exc:
        raise DeviceAuthError(f"missing header {exc.args[0]}") from None
    try:
        certificate = x509.load_der_x509_certificate(base64.b64decode(cert_b64, validate=True))
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
            signature, canonical_request(method, target, timestamp, body), ec.ECDSA(hashes.SHA256())
        )
    except InvalidSignature:
        raise DeviceAuthError("device signature does not verify") from None
    return SignedRequest(device_id_of(certificate), certificate, timestamp)


class DeviceRequestAuth(httpx.Auth):
    """httpx authentication that signs every request with the device key."""

    requires_request_body = True

    def __init__(self, identity: DeviceIdentity, clock: Callable[[], float]) -> None:
        """``clock`` returns wall-clock seconds: ``time.time`` in production."""
        self._identity = identity
        self._clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        target = request.url.raw_path.decode("ascii")
        request.headers.update(
            self._identity.sign_request(request.method, target, request.content, now=self._clock())
        )
        yield request
