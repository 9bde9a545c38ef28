"""Fixtures for the card layer: virtual cards built from the session's test CA."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kiosk.sim.card import VirtualJpkiCard
from kiosk.sim.profile import CardKind, CardProfile


class DirectCard(VirtualJpkiCard):
    """The virtual card as a link in-process: ``transmit`` is the card's own ``process``."""

    def transmit(self, command: bytes) -> bytes:
        return self.process(command)


@pytest.fixture
def make_card(card_profile_factory: Callable[..., CardProfile]) -> Any:
    """Build a powered virtual card of a kind; its profile file keeps its PIN counter."""

    def make(kind: CardKind = CardKind.MYNUMBER, **options: Any) -> DirectCard:
        card = DirectCard(card_profile_factory(kind, **options))
        card.power_on()
        return card

    return make
