"""The flow's journal: records appended to the outbox off the flow's thread.

Each append is an fsync; done on the flow's thread it would hold up the next screen. The
runner only queues the record; a failing outbox never stops the flow (the failure is counted
and logged, throttled).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from kiosk.flow.queue_worker import QueueWorker


class RecordSink(Protocol):
    """Where records go: :class:`~kiosk.outbox.queue.Outbox` in the kiosk."""

    def append(self, kind: str, payload: Mapping[str, Any]) -> int: ...


class Journal(QueueWorker):
    """Appends records to ``sink`` (None: counts them only) on a thread of its own."""

    def __init__(self, sink: RecordSink | None) -> None:
        super().__init__("flow-journal", "journal", "a flow record was not stored")
        self._sink = sink
        self.written = 0

    def record(self, kind: str, payload: Mapping[str, Any]) -> None:
        item = dict(payload)
        self._put(lambda: self._write(kind, item))

    def _write(self, kind: str, payload: dict[str, Any]) -> None:
        if self._sink is not None:
            self._sink.append(kind, payload)
        self.written += 1
