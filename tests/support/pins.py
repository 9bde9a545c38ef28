"""Reading a gpiozero mock pin's timed history.

A mock pin's ``states`` list starts with its state when cleared; each later entry is a change,
stamped with how long the state before it lasted. These helpers turn that into
``(state, seconds it lasted)`` pairs and compare them with generous windows: a background
thread on a loaded 2-core machine wakes late, never early.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

#: a state may last this much longer than asked (a late thread wake-up), never shorter
LATE_S = 0.3
EARLY_S = 0.01


def changes(pin: Any) -> list[bool]:
    """The states the pin changed to since it was last cleared."""
    return [s.state for s in pin.states[1:]]


def lasted(pin: Any) -> list[tuple[bool, float]]:
    """``(state, seconds)`` for each state the pin entered and left again since clearing."""
    states = pin.states
    return [(states[i].state, states[i + 1].timestamp) for i in range(1, len(states) - 1)]


def wait_for_changes(pin: Any, n: int, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while len(pin.states) - 1 < n:
        if time.monotonic() > deadline:
            pytest.fail(f"the pin changed {len(pin.states) - 1} times, expected {n}: {pin.states}")
        time.sleep(0.01)


def assert_lasted(actual: float, expected: float, what: str) -> None:
    assert expected - EARLY_S <= actual <= expected + LATE_S, (
        f"{what} lasted {actual:.3f} s, expected {expected} s (up to {LATE_S} s late)"
    )
