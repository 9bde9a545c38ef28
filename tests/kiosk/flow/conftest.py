"""Fixtures of the runner and worker tests: card profiles with a known PIN, and harnesses
(:class:`~tests.support.runner.Harness`) started and stopped around each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kiosk.sim.profile import CardKind, CardProfile
from tests.support.runner import PIN, Harness


@pytest.fixture
def make_profile(card_profile_factory):
    def make(kind: CardKind = CardKind.MYNUMBER, **options) -> CardProfile:
        options.setdefault("pin", PIN)
        return card_profile_factory(kind, **options)

    return make


@pytest.fixture
def harness(make_profile) -> Iterator[Harness]:
    made: list[Harness] = []

    def build(profile: CardProfile | None = None, **options) -> Harness:
        kiosk = Harness(profile or make_profile(), **options)
        made.append(kiosk)
        return kiosk.start()

    yield build  # type: ignore[misc]
    for kiosk in made:
        kiosk.stop()
