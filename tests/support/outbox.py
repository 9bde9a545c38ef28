"""What the outbox tests share: clocks a test moves by hand, and reading the queue back."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from contract.sealing import OutboxPrivateKey
from kiosk.outbox.queue import Outbox

#: The ``make_outbox`` fixture (tests/kiosk/outbox/conftest.py).
MakeOutbox = Callable[..., Outbox]

NOW = 1_790_000_000 * 10**9


class Clock:
    """A wall clock and a monotonic clock a test moves by hand."""

    def __init__(self, wall_ns: int = NOW, mono_ns: int = 10**12) -> None:
        self.wall_ns = wall_ns
        self.mono_ns = mono_ns

    def wall(self) -> int:
        return self.wall_ns

    def mono(self) -> int:
        return self.mono_ns

    def advance(self, seconds: float) -> None:
        self.wall_ns += int(seconds * 1e9)
        self.mono_ns += int(seconds * 1e9)


def opened(outbox: Outbox, key: OutboxPrivateKey) -> list[tuple[int, int, str, dict[str, Any]]]:
    """(seq, prev, kind, payload) of every queued record, decrypted with the server's key."""
    opener = key.opener()
    return [
        (r.seq, r.header.prev, r.header.kind, json.loads(opener.open(r.sealed, r.header)))
        for r in outbox.pending(max_records=100_000, max_bytes=1 << 40)
    ]


def queued(outbox: Outbox, key: OutboxPrivateKey) -> list[tuple[int, str, dict[str, Any]]]:
    """(seq, kind, payload) of every queued record."""
    return [(seq, kind, payload) for seq, _, kind, payload in opened(outbox, key)]


def fill(outbox: Outbox, n: int) -> list[int]:
    """Append ``n`` records of about 200 bytes; their sequences."""
    return [outbox.append("card.event", {"n": i, "pad": "p" * 200}) for i in range(n)]
