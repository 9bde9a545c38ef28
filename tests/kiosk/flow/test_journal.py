"""The journal inside the running flow: a failing outbox never stops the flow."""

from __future__ import annotations

from kiosk.errors import OutboxFull
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
