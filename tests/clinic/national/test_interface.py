"""What the eligibility check needs from the national system: the answer and the connector."""

from __future__ import annotations

import pytest

from clinic.national.interface import NationalAnswer, is_blocking


def test_an_answer_has_one_of_the_five_validity_codes():
    assert NationalAnswer(1, ({"InsurerNumber": "06139999"},)).records[0]["InsurerNumber"]
    for code in (0, 6):
        with pytest.raises(ValueError, match="1-5"):
            NationalAnswer(code)


def test_a_connector_blocks_unless_it_says_it_does_not():
    class Remote:
        def lookup(self, issuer: str, serial: int) -> NationalAnswer:
            return NationalAnswer(4)

    class InMemory(Remote):
        blocking = False

    assert is_blocking(Remote())
    assert not is_blocking(InMemory())
