"""The message a card signs binds the nonce, the kiosk and the mode, unambiguously."""

from __future__ import annotations

import pytest

from contract.challenge import signed_message


def test_each_part_changes_the_message() -> None:
    base = signed_message(b"n" * 32, "kiosk-1", "pin")
    assert signed_message(b"m" * 32, "kiosk-1", "pin") != base
    assert signed_message(b"n" * 32, "kiosk-2", "pin") != base
    assert signed_message(b"n" * 32, "kiosk-1", "visual") != base


def test_moving_bytes_between_nonce_and_device_changes_the_message() -> None:
    assert signed_message(b"ab\x00c", "d", "pin") != signed_message(b"ab\x00", "cd", "pin")
    assert signed_message(b"abc", "d", "pin") != signed_message(b"ab", "cd", "pin")


@pytest.mark.parametrize(
    ("nonce", "device", "mode"),
    [(b"", "k", "pin"), (b"n", "k\x00x", "pin"), (b"n", "k", "face"), (b"n" * 70000, "k", "pin")],
)
def test_malformed_parts_are_refused(nonce: bytes, device: str, mode: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        signed_message(nonce, device, mode)  # type: ignore[arg-type]
