"""Card profiles: everything one virtual card is, kept in a TOML file.

A profile says which kind of token the card is (docs/card.md: My Number card, Android
or iPhone スマホ用電子証明書, the old 住基カード, or a card with no JPKI application at all), its
4-digit PIN or none (顔認証マイナンバーカード), the PIN counters, the user-authentication key and
certificates, the ATR, and a timing model.

The PIN counters live in the profile file and are written back (atomically) whenever they
change, because on a real card the counter is shared by every clinic and survives removal:
a locked card stays locked on the next insertion (a new :class:`~kiosk.sim.card.VirtualJpkiCard`
built from the same file).

The file format is described in ``kiosk/sim/FORMATS.md``.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import tomli_w
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from contract.errors import ConfigError
from kiosk.sim.pki import TestJpkiCa, new_rsa_key

PROFILE_FORMAT = 1

#: Tries of the user-authentication PIN (EF 0018) and of the 券面事項入力補助 PIN.
PIN_MAX_TRIES = 3
#: Tries of the digital-signature password (EF 001B).
SIGNATURE_PASSWORD_MAX_TRIES = 5


class ProfileError(ConfigError):
    """A card profile is malformed or inconsistent."""


class CardKind(StrEnum):
    """What answers on the reader. The token label (EF 0006) tells the JPKI kinds apart."""

    MYNUMBER = "mynumber"
    """A My Number card (マイナンバーカード): JPKI and the two 券面 applications."""
    ANDROID = "android"
    """An Android phone's スマホ用電子証明書: the certificate needs the PIN first."""
    IPHONE = "iphone"
    """An iPhone holding the JPKI certificates."""
    JUKI = "juki"
    """The old 住基カード: JPKI with the signature certificate only (no user authentication)."""
    NON_JPKI = "non-jpki"
    """A transit or credit card: no JPKI application (SELECT of the JPKI AID gives 6A82)."""

    @property
    def token_label(self) -> str | None:
        """The label at the start of EF 0006, or None when the card has no JPKI application."""
        return _TOKEN_LABELS.get(self)

    @property
    def has_user_authentication(self) -> bool:
        """Whether the token carries a user-authentication certificate and key."""
        return self in (CardKind.MYNUMBER, CardKind.ANDROID, CardKind.IPHONE)


_TOKEN_LABELS = {
    CardKind.MYNUMBER: "JPKIAPICCTOKEN2",
    CardKind.ANDROID: "JPKIAPGPSETOKEN",
    CardKind.IPHONE: "JPKIAPIOSTOKEN",
    CardKind.JUKI: "JPKIAPICCTOKEN",
}


def contactless_atr(historical_bytes: bytes) -> bytes:
    """The ATR a PC/SC reader builds for a contactless card (PC/SC part 3, section 3.1.3).

    ``3B 8n 80 01 <historical bytes> TCK``: T=1 only, the historical bytes taken from the ATS
    (type A) or from the ATQB (type B), TCK the XOR of every byte after TS.
    """
    if len(historical_bytes) > 15:
        raise ValueError("at most 15 historical bytes")
    body = bytes([0x80 | len(historical_bytes), 0x80, 0x01]) + historical_bytes
    tck = 0
    for byte in body:
        tck ^= byte
    return b"\x3b" + body + bytes([tck])


#: Type B cards (the My Number card, the 住基カード): ATQB application data, protocol info, MBLI.
_TYPE_B_HISTORICAL = bytes.fromhex("00000000B3818100")
#: A FeliCa transit card as a reader presents it (PC/SC part 3 storage-card form, card 003B).
_FELICA_HISTORICAL = bytes.fromhex("804F0CA00000030611003B00000000")

DEFAULT_ATRS = {
    CardKind.MYNUMBER: contactless_atr(_TYPE_B_HISTORICAL),
    CardKind.JUKI: contactless_atr(_TYPE_B_HISTORICAL),
    CardKind.ANDROID: contactless_atr(b""),  # host card emulation: an ATS without historical bytes
    CardKind.IPHONE: contactless_atr(b""),
    CardKind.NON_JPKI: contactless_atr(_FELICA_HISTORICAL),
}
"""ATRs as a contactless reader shows them. The kiosk must never rely on them (docs/card.md)."""


@dataclass
class TimingModel:
    """How long the card takes, applied by the transport (:mod:`kiosk.sim.vpcd`), never by the
    card itself. All zero by default: unit tests run at full speed."""

    apdu_latency_s: float = 0.0
    """Fixed time per command-response pair."""
    bit_rate: int = 0
    """Transfer rate in bits per second over the command and response bytes; 0 = instant."""
    signature_s: float = 0.0
    """Extra time of a COMPUTE DIGITAL SIGNATURE (the RSA-2048 private operation)."""

    def __post_init__(self) -> None:
        if self.apdu_latency_s < 0 or self.bit_rate < 0 or self.signature_s < 0:
            raise ValueError("timing values cannot be negative")

    @classmethod
    def realistic(cls) -> TimingModel:
        """Published figures for comparable cards over contactless PC/SC readers.

        About 10 ms per APDU round trip, ISO 14443 at 424 kbit/s, and 150-700 ms per RSA-2048
        signature on smart-card chips; the middle value 350 ms is used.
        """
        return cls(apdu_latency_s=0.010, bit_rate=424_000, signature_s=0.35)

    def delay_for(self, command: bytes, response: bytes, *, signing: bool) -> float:
        """Seconds this exchange takes on the card (``signing``: it made a signature)."""
        delay = self.apdu_latency_s
        if self.bit_rate:
            delay += (len(command) + len(response)) * 8 / self.bit_rate
        if signing:
            delay += self.signature_s
        return delay


@dataclass
class CardProfile:
    """One virtual card. ``path`` is where it is kept (not part of the file itself)."""

    id: str
    kind: CardKind
    pin: str | None
    """The user-authentication PIN, 4 ASCII digits; None = no usable PIN (顔認証カード)."""
    pin_tries_left: int
    user_auth_key_pem: bytes | None
    """PKCS#8 PEM of the user-authentication private key (EF 0017)."""
    user_auth_certificate: bytes | None
    """DER of the user-authentication certificate (EF 000A)."""
    ca_certificate: bytes | None
    """DER of its issuing CA certificate (EF 000B)."""
    atr: bytes
    timing: TimingModel = field(default_factory=TimingModel)
    outcome: str = ""
    """A free label the population uses, e.g. ``valid-employee``."""
    signature_ca_certificate: bytes | None = None
    """DER of the digital-signature CA certificate (EF 0002)."""
    signature_password_tries_left: int = SIGNATURE_PASSWORD_MAX_TRIES
    input_support_pin_tries_left: int = PIN_MAX_TRIES
    """The counter of the 券面事項入力補助 application's PIN (the kiosk never uses it)."""
    pin_verified_on_phone: bool = False
    """An iPhone whose owner passed Face ID or Touch ID: its JPKI session opens with the
    user-authentication PIN verified, so the empty VERIFY answers 9000. False: the iPhone
    answers ``63 Cx`` like a card and needs the PIN."""
    path: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        self.kind = CardKind(self.kind)
        if self.pin_verified_on_phone and (self.kind is not CardKind.IPHONE or self.pin is None):
            raise ProfileError(f"{self.id}: only an iPhone with a PIN verifies it on the phone")
        if self.pin is not None and not (
            len(self.pin) == 4 and self.pin.isascii() and self.pin.isdigit()
        ):
            raise ProfileError(f"{self.id}: the PIN must be 4 ASCII digits or absent")
        for name, top in (
            ("pin_tries_left", PIN_MAX_TRIES),
            ("input_support_pin_tries_left", PIN_MAX_TRIES),
            ("signature_password_tries_left", SIGNATURE_PASSWORD_MAX_TRIES),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
                raise ProfileError(f"{self.id}: {name} must be an integer from 0 to {top}")
        if not self.atr or len(self.atr) > 33:
            raise ProfileError(f"{self.id}: an ATR has 1 to 33 bytes")
        needs_user_auth = self.kind.has_user_authentication
        for name in ("user_auth_key_pem", "user_auth_certificate", "ca_certificate"):
            if needs_user_auth and getattr(self, name) is None:
                raise ProfileError(f"{self.id}: a {self.kind} token needs {name}")
        if self.kind is not CardKind.NON_JPKI and self.signature_ca_certificate is None:
            raise ProfileError(f"{self.id}: a JPKI token needs signature_ca_certificate")

    # --- reading the keys -----------------------------------------------------------------

    def user_auth_key(self) -> rsa.RSAPrivateKey:
        """The user-authentication private key."""
        if self.user_auth_key_pem is None:
            raise ProfileError(f"{self.id}: this card has no user-authentication key")
        key = serialization.load_pem_private_key(self.user_auth_key_pem, None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ProfileError(f"{self.id}: the user-authentication key is not RSA")
        return key

    def certificate(self) -> x509.Certificate:
        """The user-authentication certificate."""
        if self.user_auth_certificate is None:
            raise ProfileError(f"{self.id}: this card has no user-authentication certificate")
        return x509.load_der_x509_certificate(self.user_auth_certificate)

    # --- making one -----------------------------------------------------------------------

    @classmethod
    def generate(
        cls,
        kind: CardKind,
        ca: TestJpkiCa | None,
        *,
        id: str = "card",
        pin: str | None = "1234",
        pin_tries_left: int = PIN_MAX_TRIES,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        serial: int | None = None,
        key: rsa.RSAPrivateKey | None = None,
        outcome: str = "",
        timing: TimingModel | None = None,
        atr: bytes | None = None,
        pin_verified_on_phone: bool = False,
        path: Path | None = None,
    ) -> CardProfile:
        """A new card of ``kind`` with a fresh key (or ``key``) and a certificate from ``ca``.

        The certificate is valid from ``not_before`` (default: a day ago) to ``not_after``
        (default: five years later). A :attr:`CardKind.NON_JPKI` card needs no CA. With
        ``path`` the profile is saved there at once.
        """
        kind = CardKind(kind)
        key_pem = certificate = ca_der = signature_ca_der = None
        if kind is not CardKind.NON_JPKI:
            if ca is None:
                raise ProfileError(f"{id}: a {kind} token needs a CA")
            signature_ca_der = ca.signature_ca_certificate.public_bytes(serialization.Encoding.DER)
        if kind.has_user_authentication:
            assert ca is not None
            key = key or new_rsa_key()
            start = not_before or datetime.now(UTC) - timedelta(days=1)
            end = not_after or start + timedelta(days=5 * 365 + 1)
            issued = ca.issue_user_certificate(
                key.public_key(), not_before=start, not_after=end, serial=serial
            )
            key_pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            certificate = issued.public_bytes(serialization.Encoding.DER)
            ca_der = ca.certificate.public_bytes(serialization.Encoding.DER)
        profile = cls(
            id=id,
            kind=kind,
            pin=pin,
            pin_tries_left=pin_tries_left,
            user_auth_key_pem=key_pem,
            user_auth_certificate=certificate,
            ca_certificate=ca_der,
            atr=atr or DEFAULT_ATRS[kind],
            timing=timing or TimingModel(),
            outcome=outcome,
            signature_ca_certificate=signature_ca_der,
            pin_verified_on_phone=pin_verified_on_phone,
        )
        if path is not None:
            profile.save(path)
        return profile

    # --- the file -------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> CardProfile:
        """Read a profile file; raises :class:`ProfileError` when it is malformed."""
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ProfileError(f"{path}: cannot read the card profile: {exc}") from exc
        try:
            profile = _from_document(document)
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(f"{path}: malformed card profile: {exc}") from exc
        profile.path = path
        return profile

    def save(self, path: Path | None = None) -> None:
        """Write the profile atomically (temporary file, fsync, rename) with mode 0600.

        Without ``path`` it goes where it was loaded from or last saved; with ``path`` that
        becomes the profile's place.
        """
        target = path or self.path
        if target is None:
            raise ProfileError(f"{self.id}: the profile has no file to be saved to")
        data = tomli_w.dumps(_to_document(self), multiline_strings=True).encode("utf-8")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self.path = target


def _pem(der: bytes | None) -> str | None:
    if der is None:
        return None
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode()


def _der(text: Any) -> bytes | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise TypeError("certificates are PEM text")
    return x509.load_pem_x509_certificate(text.encode()).public_bytes(serialization.Encoding.DER)


def _to_document(profile: CardProfile) -> dict[str, Any]:
    document: dict[str, Any] = {
        "format": PROFILE_FORMAT,
        "id": profile.id,
        "kind": str(profile.kind),
        "outcome": profile.outcome,
        "atr": profile.atr.hex().upper(),
    }
    if profile.pin is not None:
        document["pin"] = profile.pin
    if profile.pin_verified_on_phone:
        document["pin_verified_on_phone"] = True
    document["counters"] = {
        "user_auth_pin_tries_left": profile.pin_tries_left,
        "input_support_pin_tries_left": profile.input_support_pin_tries_left,
        "signature_password_tries_left": profile.signature_password_tries_left,
    }
    document["timing"] = {
        "apdu_latency_s": profile.timing.apdu_latency_s,
        "bit_rate": profile.timing.bit_rate,
        "signature_s": profile.timing.signature_s,
    }
    jpki = {
        "user_auth_key": profile.user_auth_key_pem.decode() if profile.user_auth_key_pem else None,
        "user_auth_certificate": _pem(profile.user_auth_certificate),
        "ca_certificate": _pem(profile.ca_certificate),
        "signature_ca_certificate": _pem(profile.signature_ca_certificate),
    }
    present = {name: value for name, value in jpki.items() if value is not None}
    if present:
        document["jpki"] = present
    return document


def _from_document(document: dict[str, Any]) -> CardProfile:
    if document.get("format") != PROFILE_FORMAT:
        raise ValueError(f"unknown format {document.get('format')!r}, expected {PROFILE_FORMAT}")
    counters = document.get("counters", {})
    timing = document.get("timing", {})
    jpki = document.get("jpki", {})
    key = jpki.get("user_auth_key")
    if key is not None and not isinstance(key, str):
        raise TypeError("user_auth_key is PEM text")
    return CardProfile(
        id=str(document["id"]),
        kind=CardKind(document["kind"]),
        pin=document.get("pin"),
        pin_tries_left=counters.get("user_auth_pin_tries_left", PIN_MAX_TRIES),
        input_support_pin_tries_left=counters.get("input_support_pin_tries_left", PIN_MAX_TRIES),
        signature_password_tries_left=counters.get(
            "signature_password_tries_left", SIGNATURE_PASSWORD_MAX_TRIES
        ),
        user_auth_key_pem=key.encode() if key is not None else None,
        user_auth_certificate=_der(jpki.get("user_auth_certificate")),
        ca_certificate=_der(jpki.get("ca_certificate")),
        signature_ca_certificate=_der(jpki.get("signature_ca_certificate")),
        atr=bytes.fromhex(document["atr"]),
        timing=TimingModel(
            apdu_latency_s=float(timing.get("apdu_latency_s", 0.0)),
            bit_rate=int(timing.get("bit_rate", 0)),
            signature_s=float(timing.get("signature_s", 0.0)),
        ),
        outcome=str(document.get("outcome", "")),
        pin_verified_on_phone=_flag(document.get("pin_verified_on_phone", False)),
    )


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("pin_verified_on_phone is true or false")
    return value


generate = CardProfile.generate
"""Module-level spelling of :meth:`CardProfile.generate`."""
