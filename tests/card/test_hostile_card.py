"""Whatever a card answers, the session raises the kiosk's own typed errors and nothing else."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.card.jpki import JpkiSession
from kiosk.card.probe import probe
from kiosk.errors import KioskError

status_words = st.sampled_from(
    [b"\x90\x00", b"\x62\x82", b"\x63\xc2", b"\x63\xc0", b"\x69\x82", b"\x69\x84", b"\x6a\x82"]
)
plausible = st.builds(lambda data, sw: data + sw, st.binary(max_size=300), status_words)
responses = st.lists(st.one_of(st.binary(max_size=300), plausible), min_size=1, max_size=40)


class ScriptedLink:
    """Answers each command with the next scripted response, then with silence."""

    def __init__(self, answers: list[bytes]) -> None:
        self._answers: Iterator[bytes] = iter(answers)

    def transmit(self, command: bytes) -> bytes:
        return next(self._answers, b"")


@settings(max_examples=400, deadline=None)
@given(responses)
def test_probe_of_any_answers_fails_only_with_kiosk_errors(answers: list[bytes]) -> None:
    with contextlib.suppress(KioskError):
        probe(ScriptedLink(answers))


@settings(max_examples=400, deadline=None)
@given(responses)
def test_pin_flow_of_any_answers_fails_only_with_kiosk_errors(answers: list[bytes]) -> None:
    session = JpkiSession(ScriptedLink(answers))
    try:
        session.open()
        session.read_certificate()
        session.pin_tries_left()
        entry = session.pin_entry()
        for digit in "1234":
            entry.type_digit(digit)
        session.verify_pin(entry)
        session.sign(b"challenge")
    except KioskError:
        pass


@pytest.fixture
def flow_card(make_card: Any) -> Any:
    return make_card(pin="1234")


class OneBadAnswer:
    """A real virtual card whose ``n``-th answer is replaced by arbitrary bytes."""

    def __init__(self, card: Any, n: int, answer: bytes) -> None:
        self._card, self._n, self._answer, self._count = card, n, answer, 0

    def transmit(self, command: bytes) -> bytes:
        self._count += 1
        response: bytes = self._card.transmit(command)
        return self._answer if self._count == self._n else response


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(min_value=1, max_value=14), answer=st.one_of(st.binary(max_size=300), plausible)
)
def test_one_corrupted_answer_in_a_real_flow_gives_a_typed_error(
    flow_card: Any, n: int, answer: bytes
) -> None:
    card = flow_card  # the same card for every example, reset in between
    card.reset()
    session = JpkiSession(OneBadAnswer(card, n, answer))
    try:
        session.open()
        session.read_certificate()
        session.pin_tries_left()
        entry = session.pin_entry()
        for digit in "1234":
            entry.type_digit(digit)
        session.verify_pin(entry)
        session.sign(b"challenge")
    except KioskError:
        pass
