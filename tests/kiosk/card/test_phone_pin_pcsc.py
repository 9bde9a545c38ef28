"""An iPhone over the real PC/SC stack (pyscard, pcscd, vpcd, the virtual card): the empty
VERIFY after Face ID tells the kiosk whether the phone already verified the PIN, and spends
no try either way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk.card import apdu
from kiosk.card.jpki import JpkiSession, PinPolicy, Token
from kiosk.errors import SecurityStatusNotSatisfied
from kiosk.flow.card_worker import card_facts
from kiosk.sim.card import VirtualJpkiCard
from kiosk.sim.profile import CardKind, CardProfile
from tests.kiosk.card.test_pcsc_flow import MakeProfile, connect, place

pytestmark = pytest.mark.pcsc

EMPTY_VERIFY = bytes.fromhex("00200080")


@pytest.fixture
def make_profile(make_card: Callable[..., VirtualJpkiCard]) -> MakeProfile:
    """A card profile file: each insertion loads it afresh, as a real card keeps its state."""

    def make(kind: CardKind, **options: object) -> Path:
        path = make_card(kind, **options).profile.path
        assert path is not None
        return path

    return make


def _verifies(card: VirtualJpkiCard) -> list[bytes]:
    return [c for c in card.apdu_log if c[1] == 0x20]


def test_an_iphone_after_face_id_answers_9000_and_signs_without_a_pin(
    pcscd: str, make_profile: MakeProfile
) -> None:
    path: Path = make_profile(CardKind.IPHONE, pin_verified_on_phone=True)
    card = VirtualJpkiCard(CardProfile.load(path))
    with place(card) as slot:
        link = connect(slot)
        try:
            session = JpkiSession(link, PinPolicy())
            assert session.open() is Token.IPHONE
            assert not session.pin_verified
            assert session.pin_tries_left() == 3
            assert session.pin_verified
            facts = card_facts(Token.IPHONE, 3, verified=session.pin_verified)
            assert facts.pin_verified
            assert facts.visual_possible
            assert len(session.sign(b"challenge")) == 256
        finally:
            link.close()
    assert _verifies(card) == [EMPTY_VERIFY], "only the empty VERIFY: no PIN was sent"
    assert CardProfile.load(path).pin_tries_left == 3


def test_an_iphone_that_answers_63cx_needs_the_pin_and_keeps_its_tries(
    pcscd: str, make_profile: MakeProfile
) -> None:
    path = make_profile(CardKind.IPHONE, pin_tries_left=2)
    card = VirtualJpkiCard(CardProfile.load(path))
    with place(card) as slot:
        link = connect(slot)
        try:
            session = JpkiSession(link, PinPolicy())
            session.open()
            assert session.pin_tries_left() == 2
            assert not session.pin_verified
            assert not card_facts(Token.IPHONE, 2, verified=session.pin_verified).pin_verified
            with pytest.raises(SecurityStatusNotSatisfied):
                session.sign(b"challenge")
        finally:
            link.close()
    assert _verifies(card) == [EMPTY_VERIFY]
    assert CardProfile.load(path).pin_tries_left == 2, "the empty VERIFY spent no try"


def test_android_is_never_reported_verified(pcscd: str, make_profile: MakeProfile) -> None:
    path = make_profile(CardKind.ANDROID)
    card = VirtualJpkiCard(CardProfile.load(path))
    with place(card) as slot:
        link = connect(slot)
        try:
            session = JpkiSession(link, PinPolicy())
            assert session.open() is Token.ANDROID
            assert session.pin_tries_left() == 3
            assert not session.pin_verified
            facts = card_facts(Token.ANDROID, 3, verified=True)
            assert not facts.pin_verified, "Android stays PIN-first"
        finally:
            link.close()
    assert apdu.select_jpki() in card.apdu_log


def test_only_an_iphone_with_a_pin_can_be_verified_on_the_phone(make_card) -> None:
    from kiosk.sim.profile import ProfileError

    with pytest.raises(ProfileError, match="only an iPhone"):
        make_card(CardKind.ANDROID, pin_verified_on_phone=True)
    with pytest.raises(ProfileError, match="only an iPhone"):
        make_card(CardKind.IPHONE, pin=None, pin_verified_on_phone=True)


def test_the_face_id_flag_survives_the_profile_file(make_profile: MakeProfile) -> None:
    path = make_profile(CardKind.IPHONE, pin_verified_on_phone=True)
    assert "pin_verified_on_phone = true" in path.read_text(encoding="utf-8")
    assert CardProfile.load(path).pin_verified_on_phone
    plain = make_profile(CardKind.IPHONE)
    assert "pin_verified_on_phone" not in plain.read_text(encoding="utf-8")
    assert not CardProfile.load(plain).pin_verified_on_phone
