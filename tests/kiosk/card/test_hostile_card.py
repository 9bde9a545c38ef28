"""Whatever a card answers, the session ends in a well-formed result or one of its own errors.

Each example either completes, and then everything it returns is what a card may legitimately
give (checked field by field), or raises one of the typed errors that this very answer can
explain. Whatever the answers, the patient's PIN is sent at most once, and only after the
card said enough tries were left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from kiosk.card import apdu
from kiosk.card.jpki import PIN_TRIES_MAX, JpkiSession, Token
from kiosk.card.probe import ProbeResult, probe
from kiosk.errors import (
    CardProtocolError,
    KioskError,
    NotMyNumberCard,
    PinError,
    PinLocked,
    PinNotUsable,
    PinRefused,
    SecurityStatusNotSatisfied,
    WrongPin,
)

status_words = st.sampled_from(
    [
        *(b"\x90\x00", b"\x62\x82", b"\x63\xc2", b"\x63\xc1", b"\x63\xc0"),
        *(b"\x69\x82", b"\x69\x83", b"\x69\x84", b"\x6a\x82", b"\x6a\x88"),
    ]
)
plausible = st.builds(lambda data, sw: data + sw, st.binary(max_size=300), status_words)
responses = st.lists(st.one_of(st.binary(max_size=300), plausible), min_size=1, max_size=40)

MESSAGE = b"challenge"
PIN = "1234"

#: What a card's answers alone can make the session raise (the typed errors of kiosk.card).
CARD_ERRORS = (
    CardProtocolError,
    NotMyNumberCard,
    SecurityStatusNotSatisfied,
    PinLocked,
    PinNotUsable,
    WrongPin,
    PinRefused,
)
#: A probe spends no try and reports a locked or absent PIN in its result: no PIN error leaves.
PROBE_ERRORS = (CardProtocolError, NotMyNumberCard, SecurityStatusNotSatisfied)


def is_pin_verify(command: bytes) -> bool:
    """VERIFY carrying a PIN (the empty VERIFY only asks for the tries left)."""
    return command[:4] == bytes.fromhex("00200080") and len(command) > 4


def is_pin_status(command: bytes) -> bool:
    return command == apdu.pin_status()


def sw_of(answer: bytes) -> int | None:
    return int.from_bytes(answer[-2:], "big") if len(answer) >= 2 else None


class ScriptedLink:
    """Answers each command with the next scripted response, then with silence."""

    def __init__(self, answers: list[bytes]) -> None:
        self._answers: Iterator[bytes] = iter(answers)
        self.exchanges: list[tuple[bytes, bytes]] = []

    def transmit(self, command: bytes) -> bytes:
        answer = next(self._answers, b"")
        self.exchanges.append((command, answer))
        return answer


def assert_pin_sent_at_most_once_and_only_when_allowed(
    exchanges: list[tuple[bytes, bytes]],
) -> None:
    """The PIN went out at most once, after a tries-left answer at or above the floor (2)."""
    pin_sent = [i for i, (command, _) in enumerate(exchanges) if is_pin_verify(command)]
    assert len(pin_sent) <= 1, "the PIN was sent more than once"
    if pin_sent:
        asked = [i for i, (c, _) in enumerate(exchanges[: pin_sent[0]]) if is_pin_status(c)]
        assert asked, "the PIN was sent before the tries left were read"
        sw = sw_of(exchanges[asked[-1]][1])
        assert sw is not None
        assert sw == apdu.SW_OK or (sw & 0xFFF0 == 0x63C0 and sw & 0x0F >= 2), f"{sw:04X}"


def assert_a_well_formed_card_error(exc: KioskError, allowed: tuple[type[KioskError], ...]) -> None:
    event(type(exc).__name__)  # --hypothesis-show-statistics tells how each example ended
    assert isinstance(exc, allowed), f"{type(exc).__name__} is not one of the expected kinds"
    assert str(exc), "a typed error says what happened"
    assert exc.code.startswith(("card.", "pin."))
    assert not exc.temporary  # a wrong answer does not get better by asking again
    if isinstance(exc, CardProtocolError):
        assert exc.sw is None or 0 <= exc.sw <= 0xFFFF
    if isinstance(exc, WrongPin):
        assert 1 <= exc.tries_left <= 15  # the low nibble of 63Cx; 63C0 is PinLocked
    if isinstance(exc, PinRefused):
        assert exc.tries_left == 1  # below the default floor of 2, above a locked PIN


def assert_a_well_formed_certificate(der: bytes) -> None:
    assert der[:1] == b"\x30"
    assert len(der) == apdu.der_total_length(der) <= apdu.MAX_CERTIFICATE_BYTES


def assert_a_well_formed_probe(result: ProbeResult, exchanges: int) -> None:
    event("completed")
    assert isinstance(result.token, Token)
    assert result.reader is None
    assert result.apdus == exchanges
    assert result.seconds >= 0
    assert result.pin in ("usable", "locked", "none")
    if result.pin == "usable":
        assert result.pin_tries_left is not None
        assert 1 <= result.pin_tries_left <= 15
    else:
        assert result.pin_tries_left is None
    # only the Android token keeps its certificate until the PIN is verified
    assert (result.certificate is None) == (result.token is Token.ANDROID)
    if result.certificate is not None:
        assert 0 < result.certificate.length <= apdu.MAX_CERTIFICATE_BYTES
    assert result.to_json()["token"] == result.token.value


@settings(max_examples=400, deadline=None)
@given(responses)
def test_probe_of_any_answers_gives_a_well_formed_result_or_a_protocol_error(
    answers: list[bytes],
) -> None:
    link = ScriptedLink(answers)
    try:
        result = probe(link)
    except KioskError as exc:
        assert_a_well_formed_card_error(exc, PROBE_ERRORS)
    else:
        assert_a_well_formed_probe(result, len(link.exchanges))
    # a probe never sends a PIN
    assert not any(is_pin_verify(command) for command, _ in link.exchanges)


@dataclass
class FlowResult:
    token: Token
    certificate: bytes
    tries_left: int
    signature: bytes


def pin_flow(session: JpkiSession) -> FlowResult:
    """What the kiosk does with a card: identify it, read its certificate, PIN, sign."""
    token = session.open()
    certificate = session.read_certificate()
    tries_left = session.pin_tries_left()
    entry = session.pin_entry()
    for digit in PIN:
        entry.type_digit(digit)
    session.verify_pin(entry)
    assert entry.spent
    return FlowResult(token, certificate, tries_left, session.sign(MESSAGE))


def assert_a_well_formed_flow(result: FlowResult) -> None:
    event("completed")
    assert isinstance(result.token, Token)
    assert result.token is not Token.ANDROID  # its certificate needs the PIN first
    assert_a_well_formed_certificate(result.certificate)
    assert 2 <= result.tries_left <= 15  # the floor let the PIN go
    assert len(result.signature) == 256


@settings(max_examples=400, deadline=None)
@given(responses)
def test_pin_flow_of_any_answers_completes_well_formed_or_fails_with_a_card_error(
    answers: list[bytes],
) -> None:
    link = ScriptedLink(answers)
    try:
        result = pin_flow(JpkiSession(link))
    except KioskError as exc:
        assert_a_well_formed_card_error(exc, CARD_ERRORS)
    else:
        assert_a_well_formed_flow(result)
    assert_pin_sent_at_most_once_and_only_when_allowed(link.exchanges)


@pytest.fixture
def flow_card(make_card: Any) -> Any:
    return make_card(pin=PIN)


class OneBadAnswer:
    """A real virtual card whose ``n``-th answer is replaced by arbitrary bytes."""

    def __init__(self, card: Any, n: int, answer: bytes) -> None:
        self._card, self._n, self._answer, self._count = card, n, answer, 0
        self.exchanges: list[tuple[bytes, bytes]] = []
        #: The command whose answer was replaced, once it was.
        self.replaced: bytes | None = None

    def transmit(self, command: bytes) -> bytes:
        self._count += 1
        response: bytes = self._card.transmit(command)
        if self._count == self._n:
            self.replaced, response = command, self._answer
        self.exchanges.append((command, response))
        return response


#: Answers every position of a real flow is also tried with, beside the random ones: "done"
#: with no data, end of file, one try left, and "done" with more data than any command asks.
EDGE_ANSWERS = (b"\x90\x00", b"\x62\x82", b"\x63\xc1", bytes(300) + b"\x90\x00")


def at_every_position(last: int) -> Callable[[Any], Any]:
    """Hypothesis examples replacing each of the first ``last`` answers by each edge answer."""

    def decorate(test: Any) -> Any:
        for n in range(1, last + 1):
            for answer in EDGE_ANSWERS:
                test = example(n=n, answer=answer)(test)
        return test

    return decorate


def ins(command: bytes | None) -> int | None:
    return command[1] if command is not None else None


def assert_explained_by_the_replaced_answer(exc: KioskError, replaced: bytes | None) -> None:
    """The real card answers a correct flow well: only the replaced answer can explain ``exc``."""
    assert replaced is not None, f"{type(exc).__name__} from a card that answered well"
    if isinstance(exc, NotMyNumberCard):
        assert replaced == apdu.select_jpki()
    if isinstance(exc, PinError):
        assert ins(replaced) == 0x20  # a VERIFY's answer (the tries left, or the PIN's)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(min_value=1, max_value=14), answer=st.one_of(st.binary(max_size=300), plausible)
)
@at_every_position(14)
def test_one_corrupted_answer_in_a_real_flow_gives_a_typed_error_or_the_real_result(
    flow_card: Any, n: int, answer: bytes
) -> None:
    card = flow_card  # the same card for every example, reset in between
    card.reset()
    link = OneBadAnswer(card, n, answer)
    try:
        result = pin_flow(JpkiSession(link))
    except KioskError as exc:
        assert_a_well_formed_card_error(exc, CARD_ERRORS)
        assert_explained_by_the_replaced_answer(exc, link.replaced)
    else:
        assert_a_well_formed_flow(result)
        profile = card.profile
        if ins(link.replaced) != 0xB0:  # no READ BINARY answer was replaced
            assert result.token is Token.MYNUMBER_CARD
            assert result.certificate == profile.user_auth_certificate
        if ins(link.replaced) != 0x20:  # no VERIFY answer was replaced
            assert result.tries_left == PIN_TRIES_MAX
        if ins(link.replaced) != 0x2A:  # the signature is the card's own
            public_key = profile.certificate().public_key()
            assert isinstance(public_key, rsa.RSAPublicKey)
            try:
                public_key.verify(result.signature, MESSAGE, padding.PKCS1v15(), hashes.SHA256())
            except InvalidSignature:
                pytest.fail("the card's signature does not verify")
    assert_pin_sent_at_most_once_and_only_when_allowed(link.exchanges)
    # the PIN typed was right: whatever the kiosk was told, the card's counter is untouched
    assert card.pin_tries_left == PIN_TRIES_MAX


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(min_value=1, max_value=12), answer=st.one_of(st.binary(max_size=300), plausible)
)
@at_every_position(12)
def test_probe_of_a_real_card_with_one_corrupted_answer_gives_a_protocol_error_or_the_truth(
    flow_card: Any, n: int, answer: bytes
) -> None:
    card = flow_card
    card.reset()
    link = OneBadAnswer(card, n, answer)
    try:
        result = probe(link)
    except KioskError as exc:
        assert_a_well_formed_card_error(exc, PROBE_ERRORS)
        assert_explained_by_the_replaced_answer(exc, link.replaced)
    else:
        assert_a_well_formed_probe(result, len(link.exchanges))
        if ins(link.replaced) != 0xB0:  # no READ BINARY answer was replaced
            real = card.profile.certificate()
            assert result.token is Token.MYNUMBER_CARD
            assert result.certificate is not None
            assert result.certificate.serial == real.serial_number
            assert result.certificate.length == len(card.profile.user_auth_certificate)
        if ins(link.replaced) != 0x20:  # the tries-left answer is the card's own
            assert (result.pin, result.pin_tries_left) == ("usable", PIN_TRIES_MAX)
    assert not any(is_pin_verify(command) for command, _ in link.exchanges)
    assert card.pin_tries_left == PIN_TRIES_MAX
