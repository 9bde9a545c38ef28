"""Probe a card: what it is and what its user-authentication side holds, spending no PIN try.

Used by ``kiosk card probe`` and by maintainers checking a reader at a counter. The result
carries no personal data: JPKI user-authentication certificates name no person.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509

from kiosk.card.jpki import JpkiSession, Link, Token
from kiosk.card.pcsc import PcscContext
from kiosk.errors import CardProtocolError, NoCard, PinLocked, PinNotUsable, ReaderGone


@dataclass(frozen=True)
class CertificateSummary:
    """The parts of the user-authentication certificate a maintainer wants to see."""

    serial: int
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    length: int

    @classmethod
    def from_der(cls, der: bytes) -> CertificateSummary:
        try:
            certificate = x509.load_der_x509_certificate(der)
        except ValueError as exc:
            raise CardProtocolError(f"the card's certificate does not parse: {exc}") from None
        return cls(
            serial=certificate.serial_number,
            subject=certificate.subject.rfc4514_string(),
            issuer=certificate.issuer.rfc4514_string(),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            length=len(der),
        )


@dataclass(frozen=True)
class ProbeResult:
    reader: str | None
    token: Token
    certificate: CertificateSummary | None
    #: None when the PIN is locked or the card has none.
    pin_tries_left: int | None
    #: "usable", "locked" or "none" (a face-authentication card).
    pin: str
    apdus: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        certificate: dict[str, Any] | None = None
        if self.certificate is not None:
            c = self.certificate
            certificate = {
                "serial": str(c.serial),
                "subject": c.subject,
                "issuer": c.issuer,
                "not_before": c.not_before.isoformat(),
                "not_after": c.not_after.isoformat(),
                "bytes": c.length,
            }
        return {
            "reader": self.reader,
            "token": self.token.value,
            "certificate": certificate,
            "pin_tries_left": self.pin_tries_left,
            "pin": self.pin,
            "apdus": self.apdus,
            "seconds": round(self.seconds, 6),
        }

    def to_text(self) -> str:
        lines = [f"reader:          {self.reader or '-'}", f"token:           {self.token.value}"]
        if self.certificate is None:
            lines.append("certificate:     shown by this token only after the PIN")
        else:
            c = self.certificate
            lines += [
                f"serial:          {c.serial}",
                f"subject:         {c.subject}",
                f"issuer:          {c.issuer}",
                f"valid:           {c.not_before:%Y-%m-%d} to {c.not_after:%Y-%m-%d}",
            ]
        tries = "-" if self.pin_tries_left is None else str(self.pin_tries_left)
        lines.append(f"PIN tries left:  {tries} ({self.pin})")
        return "\n".join(lines)


def probe(link: Link, *, reader: str | None = None) -> ProbeResult:
    """Identify the card on ``link`` and read what needs no PIN. Spends no try."""
    started = time.perf_counter()
    session = JpkiSession(link)
    identity = session.read_identity()
    tries: int | None
    try:
        tries = session.pin_tries_left()
        pin = "usable"
    except PinLocked:
        tries, pin = None, "locked"
    except PinNotUsable:
        tries, pin = None, "none"
    certificate = (
        CertificateSummary.from_der(identity.certificate_der)
        if identity.certificate_der is not None
        else None
    )
    return ProbeResult(
        reader=reader,
        token=identity.token,
        certificate=certificate,
        pin_tries_left=tries,
        pin=pin,
        apdus=session.apdu_count,
        seconds=time.perf_counter() - started,
    )


def choose_reader(context: PcscContext, wanted: str | None) -> str:
    """The reader to use: the one named, else the first with a card on it."""
    readers = context.readers()
    if not readers:
        raise ReaderGone("no card reader is connected")
    if wanted is not None:
        if wanted not in readers:
            raise ReaderGone(f"no reader named {wanted!r} (readers: {', '.join(readers)})")
        if not context.card_present(wanted):
            raise NoCard(f"no card on {wanted}")
        return wanted
    for reader in readers:
        if context.card_present(reader):
            return reader
    raise NoCard("no card on any reader")


def probe_reader(wanted: str | None = None) -> ProbeResult:
    """Probe the card on a PC/SC reader."""
    with PcscContext() as context:
        reader = choose_reader(context, wanted)
        with context.connect(reader) as link:
            return probe(link, reader=reader)
