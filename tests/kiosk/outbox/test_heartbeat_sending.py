"""The heartbeat goes to the clinic server too, as the flat detail of contract.heartbeat."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from contract.heartbeat import KioskHealth
from contract.sealing import OutboxPrivateKey
from kiosk import __version__
from kiosk.errors import OutboxFull, ServerUnreachable
from kiosk.outbox.heartbeat import Heartbeat
from kiosk.outbox.queue import Outbox

MakeOutbox = Callable[..., Outbox]


class Reporter:
    """Records what it is sent, or fails like an unreachable server."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.down = False
        self.beat = threading.Event()

    def heartbeat(self, status: str, detail: Mapping[str, Any] | None = None) -> None:
        self.beat.set()
        if self.down:
            raise ServerUnreachable("POST /heartbeat: connection refused")
        self.sent.append((status, dict(detail or {})))


def test_a_beat_is_sent_with_backlog_oldest_age_notice_and_interval(
    make_outbox: MakeOutbox, server_key: OutboxPrivateKey
) -> None:
    outbox = make_outbox()
    outbox.append("card.event", {})
    oldest = outbox.status().oldest_wall_ns
    assert oldest is not None
    reporter = Reporter()
    beat = Heartbeat(
        outbox,
        reader_state=lambda: "present",
        clock_synced=lambda: True,
        interval_s=1.0,
        reporter=reporter,
        last_notice=lambda: ("K-201", 1_700_000_000.0),
        wall=lambda: oldest / 1e9 + 90.0,
    )
    seq = beat.beat()
    assert seq is not None, "still written to the outbox, as the kiosk's health history"
    [(status, detail)] = reporter.sent
    assert status == "ok"
    health = KioskHealth.from_detail(detail)
    assert health.reader == "present"
    assert health.backlog_records == 1
    assert health.oldest_age_s == 90.0
    assert health.interval_s == 1.0
    assert health.clock_synced is True
    assert health.version == __version__
    assert (health.notice, health.notice_at) == ("K-201", 1_700_000_000.0)
    assert beat.delivered is True
    [record] = [r for r in outbox.pending(max_records=10, max_bytes=1 << 20) if r.seq == seq]
    payload = json.loads(server_key.opener().open(record.sealed, record.header))
    assert payload["notice"] == "K-201"
    assert payload["queue"]["oldest_age_s"] == 90.0


def test_faults_make_the_status_and_a_full_outbox_does_not_stop_the_sending(
    make_outbox: MakeOutbox,
) -> None:
    outbox = make_outbox(max_bytes=64 * 1024)
    try:
        for _ in range(64):
            outbox.append("card.event", {"pad": "x" * 1000})
    except OutboxFull:
        pass
    reporter = Reporter()
    beat = Heartbeat(
        outbox, reader_state=lambda: "absent", clock_synced=lambda: False, reporter=reporter
    )
    assert beat.beat() is None, "the outbox refused the record"
    [(status, detail)] = reporter.sent
    assert status == "error"
    faults = KioskHealth.from_detail(detail).faults()
    assert faults[:2] == ("reader.absent", "clock.unsynchronised")
    assert "outbox.full" in faults


def test_an_unreachable_server_is_logged_once_and_the_beats_go_on(
    make_outbox: MakeOutbox, caplog
) -> None:
    reporter = Reporter()
    reporter.down = True
    beat = Heartbeat(make_outbox(), clock_synced=lambda: None, reporter=reporter)
    for _ in range(3):
        assert beat.beat() is not None, "the outbox still gets every beat"
    assert beat.delivered is False
    reporter.down = False
    beat.beat()
    assert beat.delivered is True
    assert len(reporter.sent) == 1
    warnings = [r for r in caplog.records if "not delivered" in r.getMessage()]
    assert len(warnings) == 1


def test_run_beats_until_stopped(make_outbox: MakeOutbox) -> None:
    reporter = Reporter()
    beat = Heartbeat(make_outbox(), clock_synced=lambda: None, reporter=reporter, interval_s=0.01)
    stop = threading.Event()
    runner = threading.Thread(target=beat.run, args=(stop,))
    runner.start()
    try:
        for _ in range(3):
            reporter.beat.clear()
            assert reporter.beat.wait(10)
    finally:
        stop.set()
        runner.join(10)
    assert not runner.is_alive()


def test_a_beat_that_fails_unforeseen_does_not_end_the_heartbeat(make_outbox: MakeOutbox) -> None:
    calls = []

    def flaky() -> bool | None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("timedatectl went away")
        return True

    reporter = Reporter()
    beat = Heartbeat(make_outbox(), clock_synced=flaky, reporter=reporter, interval_s=0.01)
    stop = threading.Event()
    runner = threading.Thread(target=beat.run, args=(stop,))
    runner.start()
    try:
        assert reporter.beat.wait(10), "the beat after the failed one went out"
    finally:
        stop.set()
        runner.join(10)
    assert len(calls) >= 2
