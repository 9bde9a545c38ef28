"""The virtual My Number card: a JPKI token answering ISO 7816-4 command APDUs.

An independent implementation of docs/card.md (it shares no code with ``kiosk/card``,
so a misreading of the card cannot cancel itself out). Bytes in, bytes out, no clock and no
sleeping: :mod:`kiosk.sim.vpcd` puts it on the real PC/SC stack and applies the timing model.

What the card holds
-------------------
Applications, selected with ``00 A4 04 0C|00 <Lc> <AID>`` (no FCI is ever returned):

- JPKI ``D392F000260100000001`` (every JPKI kind), with the elementary files
  ``0006`` token info (160 bytes; the first 32 are the space-padded token label),
  ``000A`` user-authentication certificate, ``000B`` its CA certificate,
  ``0018`` user-authentication PIN (4 digits, 3 tries), ``0017`` user-authentication key,
  and the digital-signature side the kiosk never touches: ``0001`` signature certificate,
  ``0002`` its CA certificate, ``001A`` signature key, ``001B`` signature password (5 tries).
  The old 住基カード (``JPKIAPICCTOKEN``) carries only the signature side.
- 券面事項入力補助AP ``D3921000310001010408`` (My Number card only): EF ``0011`` its 4-digit
  PIN (the card's PIN, own counter) and EF ``0001`` a dummy 12-digit My Number whose check
  digit is deliberately wrong, readable after that PIN.
- 券面AP ``D3921000310001010402`` (My Number card only): selectable, no files simulated.

Every command is appended to :attr:`VirtualJpkiCard.apdu_log` and every AID named in a SELECT
to :attr:`VirtualJpkiCard.selected_aids`, found or not, so a test can prove the kiosk never
asks for the 券面 applications or the signature files.

Status words, and the choices made where the real card is not documented
-------------------------------------------------------------------------
- ``9000`` success; ``6282`` READ BINARY reached the end of the file before Le bytes.
- ``63Cx`` wrong PIN or empty VERIFY: x tries left (``63C0``: this try locked it).
- ``6700`` wrong length: malformed APDU (short APDUs only), missing Le on READ BINARY, data
  where none belongs, an FID that is not 2 bytes, a PIN that is not 4 bytes (no try spent).
- ``6981`` READ BINARY or VERIFY on a file of the wrong kind (the PIN and key files are not
  transparent; VERIFY needs a PIN file).
- ``6982`` security status not satisfied: signing without the PIN verified in this session,
  reading the Android token's certificate before its PIN, reading the signature certificate.
- ``6984`` the PIN is locked (0 tries): nothing changes, no try is spent. docs/card.md says to
  treat ``6983`` the same; this card always answers ``6984``.
- ``6985`` COMPUTE DIGITAL SIGNATURE while no key file is selected.
- ``6986`` READ BINARY or VERIFY with no file selected.
- ``6A80`` COMPUTE DIGITAL SIGNATURE whose data is not a DER DigestInfo of a known hash
  (SHA-1, SHA-224/256/384/512) with a digest of the right length.
- ``6A82`` unknown AID, unknown FID, or SELECT of a file before any application.
- ``6A86`` wrong P1-P2. ``6A88`` the card has no usable PIN (顔認証マイナンバーカード): every
  VERIFY, with or without data, answers this, so the kiosk can tell it from a locked card.
- ``6B00`` READ BINARY at an offset at or beyond the end of the file.
- ``6D00`` unknown instruction; ``6E00`` unknown class, or a known instruction in the wrong
  class (SELECT, READ BINARY and VERIFY are CLA 00, COMPUTE DIGITAL SIGNATURE is CLA 80).

Security state (the PINs verified in this session) is cleared by power off, reset and any
successful SELECT of an application (also the same one again: the stricter choice, so a kiosk
that works here also works on a card that keeps it). A wrong PIN also clears it.

UNCERTAIN, the sim takes the stricter side: the certificate files are padded with zero bytes
to :data:`CERTIFICATE_EF_SIZE`, so a reader must take the certificate's length from the DER
header of the first chunk (as OpenSC and jpki/myna do) instead of reading until ``6282``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, IntEnum

from kiosk.sim.profile import (
    PIN_MAX_TRIES,
    SIGNATURE_PASSWORD_MAX_TRIES,
    CardKind,
    CardProfile,
)

JPKI_AID = bytes.fromhex("D392F000260100000001")
INPUT_SUPPORT_AID = bytes.fromhex("D3921000310001010408")
"""券面事項入力補助AP: holds the 12-digit My Number. The kiosk must never select it."""
CARD_FACE_AID = bytes.fromhex("D3921000310001010402")
"""券面AP: the card face and photo. The kiosk must never select it."""

EF_TOKEN_INFO = 0x0006
EF_USER_AUTH_CERTIFICATE = 0x000A
EF_USER_AUTH_CA_CERTIFICATE = 0x000B
EF_USER_AUTH_PIN = 0x0018
EF_USER_AUTH_KEY = 0x0017
EF_SIGNATURE_CERTIFICATE = 0x0001
EF_SIGNATURE_CA_CERTIFICATE = 0x0002
EF_SIGNATURE_KEY = 0x001A
EF_SIGNATURE_PASSWORD = 0x001B
EF_INPUT_SUPPORT_PIN = 0x0011
EF_INPUT_SUPPORT_MY_NUMBER = 0x0001

SIGNATURE_FILES = frozenset(
    {EF_SIGNATURE_CERTIFICATE, EF_SIGNATURE_CA_CERTIFICATE, EF_SIGNATURE_KEY, EF_SIGNATURE_PASSWORD}
)
"""The digital-signature side of the JPKI application: the kiosk never touches these."""

TOKEN_INFO_SIZE = 160
TOKEN_LABEL_SIZE = 32
CERTIFICATE_EF_SIZE = 2048


class StatusWord(IntEnum):
    """The status words this card answers (ISO 7816-4 names)."""

    OK = 0x9000
    END_OF_FILE = 0x6282
    WRONG_LENGTH = 0x6700
    INCOMPATIBLE_FILE_STRUCTURE = 0x6981
    SECURITY_STATUS_NOT_SATISFIED = 0x6982
    AUTHENTICATION_METHOD_BLOCKED = 0x6984
    CONDITIONS_OF_USE_NOT_SATISFIED = 0x6985
    NO_CURRENT_EF = 0x6986
    WRONG_DATA = 0x6A80
    FILE_NOT_FOUND = 0x6A82
    WRONG_P1_P2 = 0x6A86
    REFERENCED_DATA_NOT_FOUND = 0x6A88
    WRONG_OFFSET = 0x6B00
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00

    def to_bytes2(self) -> bytes:
        return self.value.to_bytes(2, "big")


def _sw(status: StatusWord) -> bytes:
    return status.to_bytes2()


def _tries_left_sw(tries: int) -> bytes:
    return bytes([0x63, 0xC0 | tries])


# --- the command APDU ------------------------------------------------------------------------


class _WrongLength(Exception):
    pass


@dataclass(frozen=True)
class _Command:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes
    le: int | None  # None: no Le field; 1..256 otherwise (Le 00 = 256)


def _parse_command(apdu: bytes) -> _Command:
    """Split a short command APDU into its fields (ISO 7816-4 cases 1 to 4)."""
    if len(apdu) < 4:
        raise _WrongLength
    cla, ins, p1, p2 = apdu[:4]
    body = apdu[4:]
    if not body:
        return _Command(cla, ins, p1, p2, b"", None)
    if len(body) == 1:
        return _Command(cla, ins, p1, p2, b"", body[0] or 256)
    lc = body[0]
    if lc == 0:  # extended length: this card speaks short APDUs only
        raise _WrongLength
    if len(body) == 1 + lc:
        return _Command(cla, ins, p1, p2, bytes(body[1:]), None)
    if len(body) == 2 + lc:
        return _Command(cla, ins, p1, p2, bytes(body[1 : 1 + lc]), body[-1] or 256)
    raise _WrongLength


# --- files and PINs --------------------------------------------------------------------------


class PinReference(Enum):
    """The secrets a card can check; each has its own counter in the profile."""

    USER_AUTH = "user_auth"
    SIGNATURE = "signature"
    INPUT_SUPPORT = "input_support"


@dataclass(frozen=True)
class _PinRule:
    counter: str  # the CardProfile attribute holding the tries left
    max_tries: int
    min_length: int
    max_length: int


_PIN_RULES = {
    PinReference.USER_AUTH: _PinRule("pin_tries_left", PIN_MAX_TRIES, 4, 4),
    PinReference.INPUT_SUPPORT: _PinRule("input_support_pin_tries_left", PIN_MAX_TRIES, 4, 4),
    PinReference.SIGNATURE: _PinRule(
        "signature_password_tries_left", SIGNATURE_PASSWORD_MAX_TRIES, 6, 16
    ),
}


class FileStructure(Enum):
    TRANSPARENT = "transparent"
    PIN = "pin"
    KEY = "key"


@dataclass(frozen=True)
class ElementaryFile:
    fid: int
    structure: FileStructure
    content: bytes = b""
    #: A transparent file's read condition, or the PIN a PIN or key file belongs to.
    pin: PinReference | None = None


@dataclass(frozen=True)
class Application:
    aid: bytes
    name: str
    files: dict[int, ElementaryFile] = field(default_factory=dict)


def _padded(content: bytes, size: int) -> bytes:
    return content + bytes(max(0, size - len(content)))


def dummy_my_number() -> str:
    """A 12-digit number shaped like a My Number whose check digit is wrong on purpose.

    The check digit rule (番号法施行令 8条): weights 2..7 then 2..6 from the right over the
    first 11 digits; remainder r of the sum by 11; check = 0 if r <= 1 else 11 - r.
    """
    body = "99999999999"
    total = sum(
        int(digit) * (n + 1 if n <= 6 else n - 5) for n, digit in enumerate(reversed(body), start=1)
    )
    remainder = total % 11
    check = 0 if remainder <= 1 else 11 - remainder
    return body + str((check + 1) % 10)


def _applications(profile: CardProfile) -> dict[bytes, Application]:
    kind = profile.kind
    label = kind.token_label
    if label is None:
        return {}
    files = [
        ElementaryFile(
            EF_TOKEN_INFO,
            FileStructure.TRANSPARENT,
            _padded(label.encode("ascii").ljust(TOKEN_LABEL_SIZE, b" "), TOKEN_INFO_SIZE),
        ),
        ElementaryFile(
            EF_SIGNATURE_CERTIFICATE, FileStructure.TRANSPARENT, b"", PinReference.SIGNATURE
        ),
        ElementaryFile(
            EF_SIGNATURE_CA_CERTIFICATE,
            FileStructure.TRANSPARENT,
            _padded(profile.signature_ca_certificate or b"", CERTIFICATE_EF_SIZE),
        ),
        ElementaryFile(EF_SIGNATURE_KEY, FileStructure.KEY, pin=PinReference.SIGNATURE),
        ElementaryFile(EF_SIGNATURE_PASSWORD, FileStructure.PIN, pin=PinReference.SIGNATURE),
    ]
    if kind.has_user_authentication:
        files += [
            ElementaryFile(
                EF_USER_AUTH_CERTIFICATE,
                FileStructure.TRANSPARENT,
                _padded(profile.user_auth_certificate or b"", CERTIFICATE_EF_SIZE),
                # docs/card.md: on the Android token the PIN comes before the certificate
                PinReference.USER_AUTH if kind is CardKind.ANDROID else None,
            ),
            ElementaryFile(
                EF_USER_AUTH_CA_CERTIFICATE,
                FileStructure.TRANSPARENT,
                _padded(profile.ca_certificate or b"", CERTIFICATE_EF_SIZE),
            ),
            ElementaryFile(EF_USER_AUTH_PIN, FileStructure.PIN, pin=PinReference.USER_AUTH),
            ElementaryFile(EF_USER_AUTH_KEY, FileStructure.KEY, pin=PinReference.USER_AUTH),
        ]
    applications = [Application(JPKI_AID, "JPKI", {ef.fid: ef for ef in files})]
    if kind is CardKind.MYNUMBER:
        input_support = [
            ElementaryFile(EF_INPUT_SUPPORT_PIN, FileStructure.PIN, pin=PinReference.INPUT_SUPPORT),
            ElementaryFile(
                EF_INPUT_SUPPORT_MY_NUMBER,
                FileStructure.TRANSPARENT,
                dummy_my_number().encode("ascii"),
                PinReference.INPUT_SUPPORT,
            ),
        ]
        applications += [
            Application(
                INPUT_SUPPORT_AID, "券面事項入力補助AP", {ef.fid: ef for ef in input_support}
            ),
            Application(CARD_FACE_AID, "券面AP"),
        ]
    return {application.aid: application for application in applications}


# --- DigestInfo and the RSA private operation --------------------------------------------------

_HASH_OIDS = {
    bytes.fromhex("2B0E03021A"): 20,  # SHA-1
    bytes.fromhex("608648016503040204"): 28,  # SHA-224
    bytes.fromhex("608648016503040201"): 32,  # SHA-256
    bytes.fromhex("608648016503040202"): 48,  # SHA-384
    bytes.fromhex("608648016503040203"): 64,  # SHA-512
}


def _der_element(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """(tag, value, end) of the DER element at ``offset``; ValueError if not strict DER."""
    if offset + 2 > len(data):
        raise ValueError("truncated")
    tag, first = data[offset], data[offset + 1]
    position = offset + 2
    if first < 0x80:
        length = first
    elif first in (0x81, 0x82):
        count = first - 0x80
        if position + count > len(data):
            raise ValueError("truncated length")
        length = int.from_bytes(data[position : position + count], "big")
        position += count
        if length < (0x80 if count == 1 else 0x100):
            raise ValueError("non-minimal length")
    else:
        raise ValueError("unsupported length")
    end = position + length
    if end > len(data):
        raise ValueError("truncated value")
    return tag, data[position:end], end


def is_digest_info(data: bytes) -> bool:
    """Whether ``data`` is exactly a DER DigestInfo (RFC 8017 9.2) of a known hash."""
    try:
        tag, outer, end = _der_element(data, 0)
        if tag != 0x30 or end != len(data):
            return False
        tag, algorithm, position = _der_element(outer, 0)
        if tag != 0x30:
            return False
        oid_tag, oid, after_oid = _der_element(algorithm, 0)
        if oid_tag != 0x06 or oid not in _HASH_OIDS:
            return False
        if after_oid != len(algorithm) and algorithm[after_oid:] != b"\x05\x00":
            return False
        tag, digest, end = _der_element(outer, position)
        return tag == 0x04 and end == len(outer) and len(digest) == _HASH_OIDS[oid]
    except ValueError:
        return False


@dataclass(frozen=True)
class _RsaKey:
    n: int
    p: int
    q: int
    dmp1: int
    dmq1: int
    iqmp: int

    @property
    def size(self) -> int:
        return (self.n.bit_length() + 7) // 8

    def sign_pkcs1_v15(self, digest_info: bytes) -> bytes:
        """EMSA-PKCS1-v1_5 padding of ``digest_info`` then the raw RSA private operation (CRT)."""
        padding = self.size - 3 - len(digest_info)
        if padding < 8:
            raise ValueError("DigestInfo too long for the key")
        block = b"\x00\x01" + b"\xff" * padding + b"\x00" + digest_info
        m = int.from_bytes(block, "big")
        s1 = pow(m, self.dmp1, self.p)
        s2 = pow(m, self.dmq1, self.q)
        s = s2 + ((self.iqmp * (s1 - s2)) % self.p) * self.q
        return s.to_bytes(self.size, "big")


# --- the card --------------------------------------------------------------------------------

_CLASS_OF = {0xA4: 0x00, 0xB0: 0x00, 0x20: 0x00, 0x2A: 0x80}


class VirtualJpkiCard:
    """A card built from a :class:`CardProfile`, answering command APDUs like the real token.

    PIN counters are kept in the profile. When they change the card calls ``on_change`` with
    the profile; without ``on_change`` it saves the profile to its file when it has one, so a
    locked card stays locked on the next insertion.
    """

    def __init__(
        self,
        profile: CardProfile,
        *,
        on_change: Callable[[CardProfile], None] | None = None,
    ) -> None:
        self.profile = profile
        self._on_change = on_change
        self._applications = _applications(profile)
        self._key: _RsaKey | None = None
        if profile.kind.has_user_authentication:
            numbers = profile.user_auth_key().private_numbers()
            self._key = _RsaKey(
                numbers.public_numbers.n,
                numbers.p,
                numbers.q,
                numbers.dmp1,
                numbers.dmq1,
                numbers.iqmp,
            )
        self._lock = threading.Lock()
        self._powered = False
        self._application: Application | None = None
        self._file: ElementaryFile | None = None
        self._verified: set[PinReference] = set()
        #: Every command APDU received, in order, across power cycles.
        self.apdu_log: list[bytes] = []
        #: Every AID named in a SELECT by DF name, found or not.
        self.selected_aids: list[bytes] = []
        #: Whether the last command made a signature (the transport adds the signing time).
        self.last_signed = False

    # --- the contacts ---------------------------------------------------------------------

    @property
    def atr(self) -> bytes:
        return self.profile.atr

    @property
    def powered(self) -> bool:
        return self._powered

    def power_on(self) -> None:
        """Cold start: power up with an empty session."""
        with self._lock:
            self._powered = True
            self._clear_session()

    def power_off(self) -> None:
        """Power lost (taken off the reader, or powered down): the session is gone."""
        with self._lock:
            self._powered = False
            self._clear_session()

    def reset(self) -> None:
        """Warm reset: no application, no file, no verified PIN."""
        with self._lock:
            self._powered = True
            self._clear_session()

    @property
    def pin_tries_left(self) -> int:
        return self.profile.pin_tries_left

    def process(self, command: bytes) -> bytes:
        """Answer one command APDU: response data followed by SW1 SW2.

        A command arriving means the reader powers the card, so an unpowered card starts up
        first. No input makes it raise; a failure to save the PIN counter does.
        """
        command = bytes(command)
        with self._lock:
            self.apdu_log.append(command)
            self.last_signed = False
            if not self._powered:
                self._powered = True
                self._clear_session()
            return self._dispatch(command)

    # --- commands -------------------------------------------------------------------------

    def _clear_session(self) -> None:
        self._application = None
        self._file = None
        self._verified.clear()

    def _dispatch(self, apdu: bytes) -> bytes:
        if len(apdu) < 4:
            return _sw(StatusWord.WRONG_LENGTH)
        cla, ins = apdu[0], apdu[1]
        if cla not in (0x00, 0x80):
            return _sw(StatusWord.CLA_NOT_SUPPORTED)
        if ins not in _CLASS_OF:
            return _sw(StatusWord.INS_NOT_SUPPORTED)
        if _CLASS_OF[ins] != cla:
            return _sw(StatusWord.CLA_NOT_SUPPORTED)
        try:
            command = _parse_command(apdu)
        except _WrongLength:
            return _sw(StatusWord.WRONG_LENGTH)
        handler = {
            0xA4: self._select,
            0xB0: self._read_binary,
            0x20: self._verify,
            0x2A: self._compute_digital_signature,
        }[ins]
        return handler(command)

    def _select(self, command: _Command) -> bytes:
        if command.p2 not in (0x0C, 0x00):
            return _sw(StatusWord.WRONG_P1_P2)
        if command.p1 == 0x04:  # by DF name (AID)
            if not 5 <= len(command.data) <= 16:
                return _sw(StatusWord.WRONG_LENGTH)
            self.selected_aids.append(command.data)
            application = self._applications.get(command.data)
            if application is None:
                return _sw(StatusWord.FILE_NOT_FOUND)
            self._application = application
            self._file = None
            self._verified.clear()
            if command.data == JPKI_AID and self.profile.pin_verified_on_phone:
                # the owner passed Face ID or Touch ID before holding the phone to the reader
                self._verified.add(PinReference.USER_AUTH)
            return _sw(StatusWord.OK)
        if command.p1 == 0x02:  # an EF under the current application
            if len(command.data) != 2:
                return _sw(StatusWord.WRONG_LENGTH)
            if self._application is None:
                return _sw(StatusWord.FILE_NOT_FOUND)
            found = self._application.files.get(int.from_bytes(command.data, "big"))
            if found is None:
                return _sw(StatusWord.FILE_NOT_FOUND)
            self._file = found
            return _sw(StatusWord.OK)
        return _sw(StatusWord.WRONG_P1_P2)

    def _read_binary(self, command: _Command) -> bytes:
        if command.data or command.le is None:
            return _sw(StatusWord.WRONG_LENGTH)
        if command.p1 & 0x80:  # short EF identifier addressing: not offered by this card
            return _sw(StatusWord.WRONG_P1_P2)
        current = self._file
        if current is None:
            return _sw(StatusWord.NO_CURRENT_EF)
        if current.structure is not FileStructure.TRANSPARENT:
            return _sw(StatusWord.INCOMPATIBLE_FILE_STRUCTURE)
        if current.pin is not None and current.pin not in self._verified:
            return _sw(StatusWord.SECURITY_STATUS_NOT_SATISFIED)
        offset = (command.p1 << 8) | command.p2
        if offset >= len(current.content):
            return _sw(StatusWord.WRONG_OFFSET)
        chunk = current.content[offset : offset + command.le]
        status = StatusWord.OK if len(chunk) == command.le else StatusWord.END_OF_FILE
        return chunk + _sw(status)

    def _verify(self, command: _Command) -> bytes:
        if command.p1 != 0x00 or command.p2 != 0x80:
            return _sw(StatusWord.WRONG_P1_P2)
        current = self._file
        if current is None:
            return _sw(StatusWord.NO_CURRENT_EF)
        if current.structure is not FileStructure.PIN or current.pin is None:
            return _sw(StatusWord.INCOMPATIBLE_FILE_STRUCTURE)
        reference = current.pin
        rule = _PIN_RULES[reference]
        if self.profile.pin is None:  # 顔認証マイナンバーカード: no PIN was ever set
            return _sw(StatusWord.REFERENCED_DATA_NOT_FOUND)
        tries = getattr(self.profile, rule.counter)
        if tries == 0:
            return _sw(StatusWord.AUTHENTICATION_METHOD_BLOCKED)
        if not command.data:  # tries left, spending none
            if reference in self._verified:
                return _sw(StatusWord.OK)
            return _tries_left_sw(tries)
        if not rule.min_length <= len(command.data) <= rule.max_length:
            return _sw(StatusWord.WRONG_LENGTH)
        if self._matches(reference, command.data):
            self._verified.add(reference)
            self._set_tries(rule, rule.max_tries)
            return _sw(StatusWord.OK)
        self._verified.discard(reference)
        self._set_tries(rule, tries - 1)
        return _tries_left_sw(tries - 1)

    def _matches(self, reference: PinReference, candidate: bytes) -> bool:
        if reference is PinReference.SIGNATURE:
            # The sim holds no signature password (no signature key or certificate is
            # simulated): every password is wrong and counts down, as an unknown one would.
            return False
        pin = self.profile.pin
        return pin is not None and candidate == pin.encode("ascii")

    def _set_tries(self, rule: _PinRule, tries: int) -> None:
        if getattr(self.profile, rule.counter) == tries:
            return
        setattr(self.profile, rule.counter, tries)
        if self._on_change is not None:
            self._on_change(self.profile)
        elif self.profile.path is not None:
            self.profile.save()

    def _compute_digital_signature(self, command: _Command) -> bytes:
        if command.p1 != 0x00 or command.p2 != 0x80:
            return _sw(StatusWord.WRONG_P1_P2)
        if not command.data:
            return _sw(StatusWord.WRONG_LENGTH)
        current = self._file
        if current is None or current.structure is not FileStructure.KEY or current.pin is None:
            return _sw(StatusWord.CONDITIONS_OF_USE_NOT_SATISFIED)
        if current.pin not in self._verified:
            return _sw(StatusWord.SECURITY_STATUS_NOT_SATISFIED)
        if self._key is None or current.fid != EF_USER_AUTH_KEY:
            return _sw(StatusWord.REFERENCED_DATA_NOT_FOUND)
        if not is_digest_info(command.data):
            return _sw(StatusWord.WRONG_DATA)
        signature = self._key.sign_pkcs1_v15(command.data)
        self.last_signed = True
        return signature + _sw(StatusWord.OK)
