"""The flow's journal: a failing outbox never stops the flow; every record is logged with
its journal fields."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest

from kiosk.errors import OutboxFull
from kiosk.flow.journal import Journal
from kiosk.flow.screens import ScreenId
from tests.support.runner import PIN


def test_a_failing_outbox_does_not_stop_the_flow(harness) -> None:
    kiosk = harness()
    kiosk.sink.fail = OutboxFull("full")
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    kiosk.type(PIN)
    kiosk.display.wait_screen(ScreenId.RESULT_OK)
    kiosk.journal.flush()
    assert kiosk.journal.failures > 0


class Sink:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, object]]] = []

    def append(self, kind: str, payload: Mapping[str, Any]) -> int:
        self.records.append((kind, dict(payload)))
        return len(self.records)


def test_each_record_is_logged_with_its_journal_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Sink()
    journal = Journal(
        sink, device_id="reception-1", reader=lambda: "Virtual PCD 00 00", depth=lambda: 42
    )
    caplog.set_level(logging.INFO, logger="kiosk.flow.journal")
    journal.start()
    journal.record("flow.transition", {"from": "pin_entry", "to": "error_notice", "reason": "x"})
    journal.record("verification.outcome", {"route": "error", "notice": 201, "mode": None})
    journal.record("reader.lost", {"code": "reader.gone"})
    journal.flush()
    journal.close()
    transition, outcome, lost = (r for r in caplog.records if r.name == "kiosk.flow.journal")
    assert transition.getMessage() == "flow.transition from=pin_entry to=error_notice reason=x"
    assert transition.FLOW_STATE == "error_notice"  # type: ignore[attr-defined]
    assert outcome.NOTICE == "K-201"  # type: ignore[attr-defined]
    assert outcome.FLOW_STATE == "error_notice"  # type: ignore[attr-defined]
    assert outcome.FLOW_EVENT == "verification.outcome"  # type: ignore[attr-defined]
    assert outcome.READER == "Virtual PCD 00 00"  # type: ignore[attr-defined]
    assert outcome.DEVICE == "reception-1"  # type: ignore[attr-defined]
    assert outcome.OUTBOX_DEPTH == 42  # type: ignore[attr-defined]
    assert outcome.getMessage() == "verification.outcome route=error notice=K-201"
    assert lost.levelno == logging.WARNING
    assert lost.REASON == "reader.gone"  # type: ignore[attr-defined]
    assert [kind for kind, _ in sink.records] == [
        "flow.transition",
        "verification.outcome",
        "reader.lost",
    ]


def test_a_broken_depth_leaves_the_field_out_and_the_record_stored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken() -> int:
        raise OutboxFull("full")

    caplog.set_level(logging.INFO, logger="kiosk.flow.journal")
    journal = Journal(Sink(), depth=broken)
    journal.start()
    journal.record("card.inserted", {})
    journal.flush()
    journal.close()
    (line,) = (r for r in caplog.records if r.name == "kiosk.flow.journal")
    assert line.OUTBOX_DEPTH is None  # type: ignore[attr-defined]
    assert journal.failures == 0
