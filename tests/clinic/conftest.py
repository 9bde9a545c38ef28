"""Fixtures of the clinic server's tests; the server itself, its back-ends and the population
come from ``tests.support.clinic_fixtures`` (shared with ``tests/security``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.clinic import Clinic, OffsetClock, hidden


@pytest.fixture
def hidden_field() -> Callable[[str, str], str]:
    return hidden


@pytest.fixture
def clock(clinic: Clinic) -> Iterator[OffsetClock]:
    """The server's clock; any offset a test sets is undone after it."""
    yield clinic.clock
    clinic.clock.offset = 0.0
