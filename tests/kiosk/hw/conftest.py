"""A fresh gpiozero mock pin factory for each GPIO test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory, MockPin


@pytest.fixture
def factory() -> Iterator[Any]:
    """A fresh mock pin factory (a Pi 3B header), closed after the test."""
    mock = MockFactory(pin_class=MockPin)
    yield mock
    mock.close()
