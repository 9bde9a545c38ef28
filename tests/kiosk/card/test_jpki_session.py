"""The JPKI session and its PIN policy, against the virtual card in-process (no PC/SC)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kiosk.card import apdu
from kiosk.card.jpki import JpkiSession, PinEntry, PinPolicy, Token, pin_flow_apdu_budget
from kiosk.errors import (
    NotMyNumberCard,
    PinLocked,
    PinNotUsable,
    PinRefused,
    SecurityStatusNotSatisfied,
    WrongPin,
)
from kiosk.sim.card import VirtualJpkiCard
from kiosk.sim.profile import CardKind

CardFactory = Callable[..., VirtualJpkiCard]


def typed(session: JpkiSession, digits: str) -> PinEntry:
    entry = session.pin_entry()
    for digit in digits:
        entry.type_digit(digit)
    return entry


def verify_commands(card: VirtualJpkiCard) -> list[bytes]:
    """VERIFY commands that carried a PIN (the empty VERIFY spends nothing)."""
    return [c for c in card.apdu_log if c[:4] == bytes.fromhex("00200080") and len(c) > 4]


@pytest.mark.parametrize(
    ("kind", "token"),
    [
        (CardKind.MYNUMBER, Token.MYNUMBER_CARD),
        (CardKind.ANDROID, Token.ANDROID),
        (CardKind.IPHONE, Token.IPHONE),
        (CardKind.JUKI, Token.JUKI_CARD),
    ],
)
def test_token_is_identified_from_ef_0006(
    make_card: CardFactory, kind: CardKind, token: Token
) -> None:
    assert JpkiSession(make_card(kind)).open() is token


def test_a_card_without_jpki_is_not_a_my_number_card(make_card: CardFactory) -> None:
    with pytest.raises(NotMyNumberCard):
        JpkiSession(make_card(CardKind.NON_JPKI)).open()


def test_certificate_is_read_in_the_fewest_apdus(make_card: CardFactory) -> None:
    card = make_card(CardKind.MYNUMBER)
    session = JpkiSession(card)
    session.open()
    before = session.apdu_count
    der = session.read_certificate()
    assert der == card.profile.user_auth_certificate
    assert session.apdu_count - before == 1 + math.ceil(len(der) / 256)  # SELECT + READs


def test_pin_and_sign_flow_stays_within_the_apdu_budget(make_card: CardFactory) -> None:
    card = make_card(CardKind.MYNUMBER, pin="2580")
    session = JpkiSession(card)
    session.open()
    der = session.read_certificate()
    assert session.pin_tries_left() == 3
    session.verify_pin(typed(session, "2580"))
    signature = session.sign(b"nonce-bound message")
    assert session.apdu_count <= pin_flow_apdu_budget(len(der))
    public_key = card.profile.certificate().public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(signature, b"nonce-bound message", padding.PKCS1v15(), hashes.SHA256())


def test_tries_left_spend_no_try(make_card: CardFactory) -> None:
    card = make_card(CardKind.MYNUMBER, pin_tries_left=2)
    session = JpkiSession(card)
    for _ in range(5):
        assert session.pin_tries_left() == 2
    assert card.pin_tries_left == 2
    assert verify_commands(card) == []


def test_wrong_pin_says_how_many_tries_remain(make_card: CardFactory) -> None:
    card = make_card(CardKind.MYNUMBER, pin="1111")
    session = JpkiSession(card)
    with pytest.raises(WrongPin) as caught:
        session.verify_pin(typed(session, "9999"))
    assert caught.value.tries_left == 2
    assert card.pin_tries_left == 2


def test_default_floor_sends_nothing_with_one_try_left(make_card: CardFactory) -> None:
    card = make_card(CardKind.MYNUMBER, pin="1111", pin_tries_left=1)
    session = JpkiSession(card)
    assert not session.may_ask_for_pin()
    with pytest.raises(PinRefused) as caught:
        session.verify_pin(typed(session, "1111"))
    assert caught.value.tries_left == 1
    assert verify_commands(card) == []
    assert card.pin_tries_left == 1


def test_floor_of_one_lets_the_card_lock(make_card: CardFactory) -> None:
    card = make_card(CardKind.MYNUMBER, pin="1111", pin_tries_left=1)
    session = JpkiSession(card, PinPolicy(floor=1))
    with pytest.raises(PinLocked, match="last try"):
        session.verify_pin(typed(session, "0000"))
    assert card.pin_tries_left == 0


def test_correct_pin_resets_the_counter(make_card: CardFactory) -> None:
    card = make_card(CardKind.MYNUMBER, pin="1111", pin_tries_left=2)
    session = JpkiSession(card)
    session.verify_pin(typed(session, "1111"))
    assert card.pin_tries_left == 3


def test_a_locked_card_is_never_sent_a_pin(make_card: CardFactory) -> None:
    card = make_card(CardKind.MYNUMBER, pin_tries_left=0)
    session = JpkiSession(card)
    with pytest.raises(PinLocked):
        session.verify_pin(typed(session, "1234"))
    assert verify_commands(card) == []


def test_a_face_authentication_card_has_no_usable_pin(make_card: CardFactory) -> None:
    card = make_card(CardKind.MYNUMBER, pin=None)
    session = JpkiSession(card)
    with pytest.raises(PinNotUsable):
        session.pin_tries_left()
    # and its certificate is still readable for a visual check
    assert session.read_certificate()


def test_a_pin_is_sent_once_only(make_card: CardFactory) -> None:
    card = make_card(CardKind.MYNUMBER, pin="1111")
    session = JpkiSession(card)
    entry = typed(session, "9999")
    with pytest.raises(WrongPin):
        session.verify_pin(entry)
    assert entry.spent
    assert len(entry) == 0
    with pytest.raises(PinRefused, match="already sent"):
        session.verify_pin(entry)
    assert len(verify_commands(card)) == 1


def test_a_pin_typed_for_another_session_is_refused(make_card: CardFactory) -> None:
    card = make_card(CardKind.MYNUMBER, pin="1111")
    old = JpkiSession(card)
    entry = typed(old, "1111")
    new = JpkiSession(card)
    with pytest.raises(PinRefused, match="another card session"):
        new.verify_pin(entry)
    assert verify_commands(card) == []


def test_an_incomplete_pin_is_not_sent(make_card: CardFactory) -> None:
    card = make_card(CardKind.MYNUMBER)
    session = JpkiSession(card)
    with pytest.raises(PinRefused, match="not complete"):
        session.verify_pin(typed(session, "12"))
    assert verify_commands(card) == []


def test_pin_entry_never_shows_its_digits(make_card: CardFactory) -> None:
    session = JpkiSession(make_card(CardKind.MYNUMBER))
    entry = typed(session, "1234")
    assert "1234" not in repr(entry)
    assert "1234" not in str(entry)
    entry.erase()
    assert len(entry) == 3
    entry.type_digit("9")
    entry.type_digit("8")  # a fifth key press is ignored
    assert len(entry) == 4


def test_signing_needs_the_pin_first(make_card: CardFactory) -> None:
    session = JpkiSession(make_card(CardKind.MYNUMBER))
    with pytest.raises(SecurityStatusNotSatisfied):
        session.sign(b"x")


def test_android_token_shows_its_certificate_only_after_the_pin(make_card: CardFactory) -> None:
    card = make_card(CardKind.ANDROID, pin="1357")
    session = JpkiSession(card)
    identity = session.read_identity()
    assert identity.token is Token.ANDROID
    assert identity.certificate_der is None
    with pytest.raises(SecurityStatusNotSatisfied):
        session.read_certificate()
    session.verify_pin(typed(session, "1357"))
    assert session.read_certificate() == card.profile.user_auth_certificate
    assert len(session.sign(b"m")) == 256


def test_session_never_selects_kenmen_or_signature_files(make_card: CardFactory) -> None:
    card = make_card(CardKind.MYNUMBER, pin="1111")
    session = JpkiSession(card)
    session.read_identity()
    session.verify_pin(typed(session, "1111"))
    session.sign(b"m")
    assert set(card.selected_aids) == {apdu.JPKI_AID}
    selected_efs = {c[5:7] for c in card.apdu_log if c[:4] == bytes.fromhex("00A4020C")}
    assert selected_efs <= {ef.to_bytes(2, "big") for ef in apdu.Ef}
