"""The JPKI APDU codec: command builders and status-word parsing, pure and I/O-free.

Only the commands the kiosk is allowed to send can be built here: there is no builder for
an arbitrary AID, so the 券面 applications (which hold the 12-digit My Number, name, address
and photo) cannot be selected by accident, and the only elementary files that can be
selected are the user-authentication ones listed in :class:`Ef`. The signature certificate,
its key and its password are out of reach by construction.

Status words become the kiosk's own exceptions (``kiosk.errors``) here, in tables, so the
session above reads as the protocol and not as a list of hex codes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import IntEnum
from typing import NoReturn

from kiosk.errors import (
    CardProtocolError,
    KioskError,
    NotMyNumberCard,
    PinLocked,
    PinNotUsable,
    SecurityStatusNotSatisfied,
    WrongPin,
)

#: 公的個人認証AP, the only application the kiosk selects.
JPKI_AID = bytes.fromhex("D392F000260100000001")

#: 券面事項入力補助AP and 券面AP: the kiosk must never select these. Kept here only so
#: tests and the card emulator can name what must never appear on the wire.
FORBIDDEN_AIDS = frozenset(
    {
        bytes.fromhex("D3921000310001010408"),  # 券面事項入力補助AP: My Number, name, address
        bytes.fromhex("D3921000310001010402"),  # 券面AP: the card face and photo
    }
)

#: The largest chunk one short READ BINARY returns (Le = 00).
MAX_READ = 256

#: Certificates longer than this are not what a JPKI card holds; refuse to read on.
MAX_CERTIFICATE_BYTES = 8192

#: The DER prefix of a SHA-256 DigestInfo (RFC 8017, section 9.2, note 1).
SHA256_DIGEST_INFO_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")

SW_OK = 0x9000
SW_END_OF_FILE = 0x6282  # fewer bytes than asked for were left in the file
SW_NOT_FOUND = 0x6A82


class Ef(IntEnum):
    """The elementary files of the JPKI application the kiosk reads or uses."""

    TOKEN_INFO = 0x0006
    USER_AUTH_CERTIFICATE = 0x000A
    USER_AUTH_CA_CERTIFICATE = 0x000B
    USER_AUTH_KEY = 0x0017
    USER_AUTH_PIN = 0x0018


@dataclass(frozen=True)
class Response:
    """A response APDU: the data and the two status bytes."""

    data: bytes
    sw: int

    @property
    def ok(self) -> bool:
        return self.sw == SW_OK

    def __str__(self) -> str:
        return f"{len(self.data)} bytes, SW {self.sw:04X}"


def parse_response(raw: bytes) -> Response:
    """Split a response APDU; anything shorter than a status word is a protocol error."""
    if len(raw) < 2:
        raise CardProtocolError(f"response of {len(raw)} bytes has no status word")
    return Response(bytes(raw[:-2]), int.from_bytes(raw[-2:], "big"))


# --- commands --------------------------------------------------------------------------------


def select_jpki() -> bytes:
    """SELECT the JPKI application by AID, no FCI wanted."""
    return bytes([0x00, 0xA4, 0x04, 0x0C, len(JPKI_AID)]) + JPKI_AID


def select_ef(ef: Ef) -> bytes:
    """SELECT an elementary file of the current application by its identifier."""
    ef = Ef(ef)  # refuses any identifier that is not one of ours
    return bytes([0x00, 0xA4, 0x02, 0x0C, 0x02]) + ef.to_bytes(2, "big")


def read_binary(offset: int, length: int) -> bytes:
    """READ BINARY ``length`` bytes (1..256) at ``offset`` of the selected file."""
    if not 0 <= offset <= 0x7FFF:
        raise ValueError(f"READ BINARY offset {offset} out of range")
    if not 1 <= length <= MAX_READ:
        raise ValueError(f"READ BINARY length {length} out of range")
    return bytes([0x00, 0xB0, offset >> 8, offset & 0xFF, length & 0xFF])


def pin_status() -> bytes:
    """VERIFY without data: asks for the tries left and spends none."""
    return bytes([0x00, 0x20, 0x00, 0x80])


def verify(pin: bytes) -> bytes:
    """VERIFY the user-authentication PIN (4 ASCII digits)."""
    if len(pin) != 4 or not pin.isdigit():
        raise ValueError("the user-authentication PIN is 4 digits")
    return bytes([0x00, 0x20, 0x00, 0x80, 0x04]) + pin


def compute_signature(digest_info: bytes) -> bytes:
    """COMPUTE DIGITAL SIGNATURE over a DER DigestInfo (the card pads with PKCS#1 v1.5)."""
    if not 1 <= len(digest_info) <= 255:
        raise ValueError("DigestInfo must fit a short APDU")
    return bytes([0x80, 0x2A, 0x00, 0x80, len(digest_info)]) + digest_info + b"\x00"


def sha256_digest_info(message: bytes) -> bytes:
    """The DER DigestInfo of SHA-256(message), what the card signs."""
    return SHA256_DIGEST_INFO_PREFIX + hashlib.sha256(message).digest()


# --- status words ----------------------------------------------------------------------------

_GENERIC: dict[int, type[KioskError]] = {
    0x6982: SecurityStatusNotSatisfied,
}


def expect_ok(response: Response, operation: str) -> bytes:
    """The data of a successful response; otherwise the matching typed error."""
    if response.ok:
        return response.data
    error = _GENERIC.get(response.sw)
    if error is not None:
        raise error(f"{operation}: the card answered {response.sw:04X}")
    raise CardProtocolError(f"{operation}: unexpected status {response.sw:04X}", response.sw)


def expect_jpki_selected(response: Response) -> None:
    """The answer to SELECT JPKI: not found means this is not a JPKI card."""
    if response.sw in (SW_NOT_FOUND, 0x6A81, 0x6A86, 0x6D00, 0x6E00):
        raise NotMyNumberCard(f"no JPKI application on this card (SW {response.sw:04X})")
    expect_ok(response, "SELECT JPKI")


def expect_read(response: Response, operation: str) -> bytes:
    """The data of READ BINARY; 6282 (end of file reached) still carries data."""
    if response.sw == SW_END_OF_FILE:
        return response.data
    return expect_ok(response, operation)


@dataclass(frozen=True)
class PinStatus:
    """What the empty VERIFY says about the user-authentication PIN."""

    #: Tries left before the PIN locks; None when the PIN is already verified.
    tries_left: int | None
    verified: bool


def parse_pin_status(response: Response) -> PinStatus:
    """The answer to the empty VERIFY. A locked or absent PIN raises."""
    sw = response.sw
    if sw == SW_OK:
        return PinStatus(tries_left=None, verified=True)
    if sw & 0xFFF0 == 0x63C0:
        tries = sw & 0x0F
        if tries == 0:
            raise PinLocked()
        return PinStatus(tries_left=tries, verified=False)
    _raise_pin_error(response, "PIN status")


def parse_verify(response: Response) -> None:
    """The answer to VERIFY with a PIN: returns on success, raises WrongPin and the like."""
    sw = response.sw
    if sw == SW_OK:
        return
    if sw & 0xFFF0 == 0x63C0:
        tries = sw & 0x0F
        if tries == 0:
            raise PinLocked("wrong PIN; that was the last try and the PIN is now locked")
        raise WrongPin(tries)
    _raise_pin_error(response, "VERIFY")


def _raise_pin_error(response: Response, operation: str) -> NoReturn:
    sw = response.sw
    if sw in (0x6983, 0x6984):
        raise PinLocked()
    if sw == 0x6A88:
        raise PinNotUsable("this card has no usable PIN (face-authentication card)")
    error = _GENERIC.get(sw)
    if error is not None:
        raise error(f"{operation}: the card answered {sw:04X}")
    raise CardProtocolError(f"{operation}: unexpected status {sw:04X}", sw)


def der_total_length(head: bytes) -> int:
    """Total length of the DER object (a certificate) that ``head`` begins.

    The first READ BINARY chunk carries the SEQUENCE header, so the certificate's length is
    known without a separate header read.
    """
    if len(head) < 2 or head[0] != 0x30:
        raise CardProtocolError("certificate does not start with a DER SEQUENCE")
    first = head[1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    if count == 0 or count > 3 or len(head) < 2 + count:
        raise CardProtocolError("certificate has a malformed DER length")
    length = int.from_bytes(head[2 : 2 + count], "big")
    total = 2 + count + length
    if total > MAX_CERTIFICATE_BYTES:
        raise CardProtocolError(f"certificate claims {total} bytes, more than a card holds")
    return total
