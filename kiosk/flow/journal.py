"""The flow's journal: records appended to the outbox off the flow's thread, and logged.

Each append is an fsync; done on the flow's thread it would hold up the next screen. The
runner only queues the record; a failing outbox never stops the flow (the failure is counted
and logged, throttled).

Every record is also logged, after it was stored, as one line with journal fields
(:mod:`kiosk.supervision`): ``FLOW_EVENT`` (the record's kind), ``FLOW_STATE`` (the state the
flow is in after it), ``NOTICE`` and ``REASON`` when the record has them, ``READER``,
``DEVICE`` and ``OUTBOX_DEPTH``. So ``journalctl -u onshi-kiosk NOTICE=K-201`` lists the
patients turned away for a revoked certificate, with the time, the reader and the kiosk. The
records hold codes and counts only; the log handlers clean every line all the same
(:mod:`kiosk.redaction`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from kiosk.flow.notices import Notice
from kiosk.flow.queue_worker import QueueWorker

log = logging.getLogger(__name__)

#: a record's notice number (201) to the code the screen shows and the journal carries (K-201)
NOTICE_CODES = {notice.number: notice.code for notice in Notice}


class RecordSink(Protocol):
    """Where records go: :class:`~kiosk.outbox.queue.Outbox` in the kiosk."""

    def append(self, kind: str, payload: Mapping[str, Any]) -> int: ...


class Journal(QueueWorker):
    """Appends records to ``sink`` (None: counts them only) on a thread of its own, and logs
    each with its fields (see the module docstring).

    ``reader`` and ``depth`` are asked on the journal's thread for each line: the reader's
    name and the outbox's depth (None: not known, the field is left out).
    """

    def __init__(
        self,
        sink: RecordSink | None,
        *,
        device_id: str | None = None,
        reader: Callable[[], str | None] | None = None,
        depth: Callable[[], int | None] | None = None,
    ) -> None:
        super().__init__("flow-journal", "journal", "a flow record was not stored")
        self._sink = sink
        self._device_id = device_id
        self._reader = reader
        self._depth = depth
        self.state: str | None = None
        self.written = 0

    def record(self, kind: str, payload: Mapping[str, Any]) -> None:
        item = dict(payload)
        self._put(lambda: self._write(kind, item))

    def _write(self, kind: str, payload: dict[str, Any]) -> None:
        if self._sink is not None:
            self._sink.append(kind, payload)
        self.written += 1
        self._log(kind, payload)

    def _log(self, kind: str, payload: Mapping[str, Any]) -> None:
        if kind == "flow.transition" and isinstance(payload.get("to"), str):
            self.state = payload["to"]
        notice = payload.get("notice")
        reason = payload.get("reason", payload.get("reason_code", payload.get("code")))
        fields: dict[str, Any] = {
            "FLOW_EVENT": kind,
            "FLOW_STATE": self.state,
            "NOTICE": NOTICE_CODES.get(notice, notice) if isinstance(notice, int) else notice,
            "REASON": reason,
            "DEVICE": self._device_id,
            "READER": _asked(self._reader),
            "OUTBOX_DEPTH": _asked(self._depth),
        }
        shown = {**payload, "notice": fields["NOTICE"]} if "notice" in payload else payload
        details = " ".join(f"{k}={v}" for k, v in shown.items() if v is not None)
        level = (
            logging.WARNING
            if kind in ("reader.lost", "card.error", "server.error")
            else (logging.INFO)
        )
        log.log(level, "%s %s", kind, details, extra=fields)


def _asked(question: Callable[[], Any] | None) -> Any:
    if question is None:
        return None
    try:
        return question()
    except Exception:  # a broken outbox or reader is a fact for other lines, not this one's
        return None
