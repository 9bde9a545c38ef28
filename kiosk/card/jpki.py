"""A JPKI session: what the kiosk does with a My Number card, over any bytes-in/bytes-out link.

The session speaks only to the JPKI application's user-authentication side
(docs/card.md) and keeps the PIN rules that protect the patient, so no caller can bypass them:

* the tries left are read with the empty VERIFY, which spends none, before any PIN is sent;
* a PIN goes to the card only when the tries left are at or above the policy floor (by
  default the kiosk sends nothing with one try left and routes the patient to staff);
* only a PIN typed by the patient, in this session, for this card, is ever sent, and only
  once: a :class:`PinEntry` belongs to one session and is wiped as it is sent.

It never selects another application and never touches the signature certificate, its key or
its password: :mod:`kiosk.card.apdu` cannot even build those commands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from kiosk.card import apdu
from kiosk.card.apdu import Ef
from kiosk.errors import (
    CardProtocolError,
    PinLocked,
    PinRefused,
    SecurityStatusNotSatisfied,
    WrongPin,
)
from kiosk.redaction import personal_data

#: Tries the user-authentication PIN has when it is fresh.
PIN_TRIES_MAX = 3


class Link(Protocol):
    """A card link: one command APDU in, one response APDU out."""

    def transmit(self, command: bytes) -> bytes: ...


class Token(StrEnum):
    """What carries the JPKI application, from the label in EF 0006."""

    MYNUMBER_CARD = "mynumber_card"
    ANDROID = "android"
    IPHONE = "iphone"
    JUKI_CARD = "juki_card"
    UNKNOWN = "unknown"


TOKEN_LABELS: dict[bytes, Token] = {
    b"JPKIAPICCTOKEN2": Token.MYNUMBER_CARD,
    b"JPKIAPGPSETOKEN": Token.ANDROID,
    b"JPKIAPIOSTOKEN": Token.IPHONE,
    b"JPKIAPICCTOKEN": Token.JUKI_CARD,
}

#: The label occupies the first 32 bytes of EF 0006, padded with spaces.
TOKEN_LABEL_BYTES = 32


def token_from_label(label: bytes) -> Token:
    """The token a space-padded label names; anything else is UNKNOWN."""
    return TOKEN_LABELS.get(label.rstrip(b" \x00"), Token.UNKNOWN)


@dataclass(frozen=True)
class PinPolicy:
    """When the kiosk may send a PIN to the card.

    ``floor`` is the fewest tries that must be left for the kiosk to send a PIN at all. With
    the default of 2, a card with one try left gets no PIN from the kiosk: a wrong PIN would
    lock it, and only the municipal office can unlock it.
    """

    floor: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.floor <= PIN_TRIES_MAX:
            raise ValueError(f"PIN floor must be 1..{PIN_TRIES_MAX}, not {self.floor}")

    def allows(self, tries_left: int) -> bool:
        return tries_left >= self.floor


@personal_data
class PinEntry:
    """The PIN a patient is typing, for one session; sent at most once, then wiped.

    Digits arrive one key press at a time. The object never shows its digits: ``repr`` and
    ``str`` print only how many have been typed.
    """

    def __init__(self, session: JpkiSession) -> None:
        self._session = session
        self._digits = bytearray()
        self._spent = False

    def __repr__(self) -> str:
        return f"PinEntry({'*' * len(self._digits)}{', spent' if self._spent else ''})"

    __str__ = __repr__

    def __len__(self) -> int:
        return len(self._digits)

    @property
    def complete(self) -> bool:
        return len(self._digits) == 4

    @property
    def spent(self) -> bool:
        return self._spent

    def type_digit(self, digit: str) -> None:
        """Add one digit the patient pressed; ignored once four are typed or after sending."""
        if len(digit) != 1 or digit not in "0123456789":
            raise ValueError("a PIN digit is one of 0-9")
        if not self._spent and len(self._digits) < 4:
            self._digits.append(ord(digit))

    def erase(self) -> None:
        """The correction key: remove the last digit."""
        if self._digits:
            self._digits[-1] = 0
            del self._digits[-1]

    def clear(self) -> None:
        """Forget every digit (the patient left, or the screen timed out)."""
        for i in range(len(self._digits)):
            self._digits[i] = 0
        self._digits.clear()

    def _take(self, session: JpkiSession) -> bytes:
        if session is not self._session:
            raise PinRefused("this PIN was typed for another card session")
        if self._spent:
            raise PinRefused("this PIN was already sent once")
        if not self.complete:
            raise PinRefused("the PIN is not complete")
        pin = bytes(self._digits)
        self._spent = True
        self.clear()
        return pin


@dataclass(frozen=True)
class CardIdentity:
    """What the kiosk learns from a card without a PIN (or, for a phone, after it)."""

    token: Token
    certificate_der: bytes | None


class JpkiSession:
    """One conversation with one card, from insertion to removal."""

    def __init__(self, link: Link, policy: PinPolicy | None = None) -> None:
        self._link = link
        self.policy = policy or PinPolicy()
        self._selected: Ef | None = None
        self._opened = False
        self.token: Token | None = None
        self._tries_left: int | None = None
        self._verified = False
        #: How many command APDUs this session sent, for benchmarks and tests.
        self.apdu_count = 0

    # --- plumbing ----------------------------------------------------------------------------

    def _send(self, command: bytes) -> apdu.Response:
        self.apdu_count += 1
        return apdu.parse_response(self._link.transmit(command))

    def _select(self, ef: Ef) -> None:
        if not self._opened:
            self.open()
        if self._selected is ef:
            return
        self._selected = None
        response = self._send(apdu.select_ef(ef))
        apdu.expect_ok(response, f"SELECT EF {ef.value:04X}")
        self._selected = ef

    # --- the card ----------------------------------------------------------------------------

    def open(self) -> Token:
        """Select the JPKI application and read the token label from EF 0006."""
        self._selected = None
        apdu.expect_jpki_selected(self._send(apdu.select_jpki()))
        self._opened = True
        self._select(Ef.TOKEN_INFO)
        label = apdu.expect_read(
            self._send(apdu.read_binary(0, TOKEN_LABEL_BYTES)), "READ token info"
        )
        self.token = token_from_label(label[:TOKEN_LABEL_BYTES])
        return self.token

    @property
    def needs_pin_for_certificate(self) -> bool:
        """On the Android token the certificate can only be read after VERIFY."""
        return self.token is Token.ANDROID

    def read_certificate(self) -> bytes:
        """The user-authentication certificate (DER), in ceil(length / 256) READ BINARYs."""
        if self.needs_pin_for_certificate and not self._verified:
            raise SecurityStatusNotSatisfied("this token shows its certificate only after VERIFY")
        self._select(Ef.USER_AUTH_CERTIFICATE)
        first = apdu.expect_read(self._send(apdu.read_binary(0, apdu.MAX_READ)), "READ certificate")
        total = apdu.der_total_length(first)
        data = bytearray(first[:total])
        while len(data) < total:
            want = min(apdu.MAX_READ, total - len(data))
            chunk = apdu.expect_read(
                self._send(apdu.read_binary(len(data), want)), "READ certificate"
            )
            if not chunk:
                raise CardProtocolError("the certificate ended before its DER length")
            data += chunk[:want]
        return bytes(data)

    def read_identity(self) -> CardIdentity:
        """Token and, where no PIN is needed first, the certificate."""
        token = self.open() if not self._opened or self.token is None else self.token
        if self.needs_pin_for_certificate and not self._verified:
            return CardIdentity(token, None)
        return CardIdentity(token, self.read_certificate())

    def pin_tries_left(self) -> int:
        """Tries left on the user-authentication PIN, spending none.

        Raises PinLocked or PinNotUsable. When the PIN is already verified in this session
        the card may answer 9000: then the counter is full again.
        """
        self._select(Ef.USER_AUTH_PIN)
        status = apdu.parse_pin_status(self._send(apdu.pin_status()))
        if status.verified:
            self._verified = True
            self._tries_left = PIN_TRIES_MAX
        else:
            assert status.tries_left is not None
            self._tries_left = status.tries_left
        return self._tries_left

    @property
    def pin_verified(self) -> bool:
        """Whether the PIN is verified in this session without the kiosk sending one: an
        iPhone whose owner passed Face ID or Touch ID may answer the empty VERIFY with 9000
        (read by :meth:`pin_tries_left`). False until the tries left were read."""
        return self._verified

    def pin_entry(self) -> PinEntry:
        """A fresh PIN entry for the patient to type into, bound to this session."""
        return PinEntry(self)

    def may_ask_for_pin(self) -> bool:
        """Whether the policy lets the kiosk ask for a PIN now (reads the tries left once)."""
        tries = self._tries_left if self._tries_left is not None else self.pin_tries_left()
        return self.policy.allows(tries)

    def verify_pin(self, entry: PinEntry) -> None:
        """Send the patient's PIN; raises WrongPin (tries left), PinLocked or PinRefused.

        Before sending, the tries left must be known and at or above the policy floor. A PIN
        is sent once: whatever happens on the wire (even a removal mid-command), this entry
        is spent and the kiosk never repeats it.
        """
        if self._tries_left is None:
            self.pin_tries_left()
        assert self._tries_left is not None
        if not self.policy.allows(self._tries_left):
            raise PinRefused(
                f"{self._tries_left} tries left is below the kiosk's floor of "
                f"{self.policy.floor}: no PIN is sent",
                tries_left=self._tries_left,
            )
        self._select(Ef.USER_AUTH_PIN)
        pin = entry._take(self)  # raises PinRefused for a PIN not typed in this session
        command = apdu.verify(pin)
        del pin
        try:
            apdu.parse_verify(self._send(command))
        except WrongPin as exc:
            self._tries_left = exc.tries_left
            raise
        except PinLocked:
            self._tries_left = 0
            raise
        self._verified = True
        self._tries_left = PIN_TRIES_MAX

    def sign(self, message: bytes) -> bytes:
        """The card's PKCS#1 v1.5 signature of SHA-256(message) with the user-auth key."""
        if not self._verified:
            raise SecurityStatusNotSatisfied("the PIN must be verified before signing")
        self._select(Ef.USER_AUTH_KEY)
        signature = apdu.expect_ok(
            self._send(apdu.compute_signature(apdu.sha256_digest_info(message))),
            "COMPUTE DIGITAL SIGNATURE",
        )
        if len(signature) != 256:
            raise CardProtocolError(f"signature of {len(signature)} bytes, expected 256")
        return signature


def pin_flow_apdu_budget(certificate_length: int) -> int:
    """The most APDUs a PIN-and-sign flow may take for a certificate of this length."""
    return 9 + math.ceil(certificate_length / apdu.MAX_READ)
