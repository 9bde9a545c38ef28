"""The message a card signs to answer the clinic server's challenge.

The server hands out a fresh single-use nonce; the card signs (PKCS#1 v1.5, SHA-256) a
message that binds that nonce to the kiosk that asked and to how the patient was identified,
so a signature made at one kiosk, or for one mode, cannot be replayed at another::

    "onshi-eligibility-v1" NUL len(nonce) (2 bytes, big-endian) nonce device-id NUL mode

The nonce is length-prefixed because it is random bytes that may contain NUL; the device id
(a certificate common name) and the mode never do.

Kiosk and server both build the message here.
"""

from __future__ import annotations

from typing import Literal

Mode = Literal["pin", "visual"]
MODES: tuple[Mode, ...] = ("pin", "visual")

_PREFIX = b"onshi-eligibility-v1"


def signed_message(nonce: bytes, device_id: str, mode: Mode) -> bytes:
    """The bytes the card's user-authentication key signs for this challenge."""
    if mode not in MODES:
        raise ValueError(f"unknown identification mode {mode!r}")
    if not nonce:
        raise ValueError("empty nonce")
    if len(nonce) > 0xFFFF:
        raise ValueError("nonce too long")
    device = device_id.encode("utf-8")
    if b"\x00" in device:
        raise ValueError("device id contains NUL")
    return b"".join(
        [
            _PREFIX,
            b"\x00",
            len(nonce).to_bytes(2, "big"),
            nonce,
            device,
            b"\x00",
            mode.encode("ascii"),
        ]
    )
