"""Fixtures of the outbox tests: the server's outbox key pair and outboxes in tmp folders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from contract.sealing import OutboxPrivateKey
from kiosk.outbox.queue import Outbox

DEVICE = "kiosk-test-01"


@pytest.fixture
def make_outbox(tmp_path: Path, server_key: OutboxPrivateKey) -> Iterator[Callable[..., Outbox]]:
    opened: list[Outbox] = []

    def make(path: Path | None = None, **kwargs: Any) -> Outbox:
        kwargs.setdefault("device_id", DEVICE)
        kwargs.setdefault("public_key", server_key.public_key())
        outbox = Outbox(path or tmp_path / "outbox" / "outbox.db", **kwargs)
        opened.append(outbox)
        return outbox

    yield make
    for outbox in opened:
        outbox.close()
