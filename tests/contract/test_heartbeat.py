"""The heartbeat's wire form and the one rule of what counts as a fault."""

from __future__ import annotations

from contract.heartbeat import KioskHealth


def test_a_well_kiosk_is_ok_and_its_detail_reads_back_the_same() -> None:
    health = KioskHealth(
        interval_s=1.0,
        reader="present",
        backlog_records=3,
        backlog_bytes=900,
        oldest_age_s=12.5,
        queue_level="ok",
        clock_synced=True,
        temperature_c=48.3,
        uptime_s=3600.0,
        version="0.1.0",
        notice="K-201",
        notice_at=1_700_000_000.0,
    )
    assert health.faults() == ()
    assert health.status == "ok"
    detail = health.to_detail()
    assert all(v is None or isinstance(v, str | int | float | bool) for v in detail.values())
    assert len(detail) <= 32, "the server takes at most 32 detail entries"
    assert KioskHealth.from_detail(detail) == health


def test_a_missing_reader_an_unsynchronised_clock_and_outbox_alarms_are_faults() -> None:
    assert KioskHealth(reader="absent").faults() == ("reader.absent",)
    assert KioskHealth(reader="absent").status == "error"
    assert KioskHealth(reader="error:RuntimeError").faults() == ("reader.error",)
    assert KioskHealth(reader="card").faults() == (), "a card on a working reader"
    assert KioskHealth(clock_synced=False).faults() == ("clock.unsynchronised",)
    assert KioskHealth(clock_synced=None).faults() == (), "nothing could tell: no fault"
    alarmed = KioskHealth(alarms=("outbox.warn", "outbox.parked"))
    assert alarmed.faults() == ("outbox.warn", "outbox.parked")
    assert alarmed.status == "degraded"
    assert KioskHealth.from_detail(alarmed.to_detail()).alarms == alarmed.alarms


def test_an_odd_detail_reads_as_unknown_and_the_interval_stays_in_bounds() -> None:
    odd = KioskHealth.from_detail(
        {"interval_s": True, "reader": 5, "clock_synced": "yes", "backlog_records": "many"}
    )
    assert odd == KioskHealth()
    assert KioskHealth.from_detail({"interval_s": 1e9}).interval_s == 3600.0
    assert KioskHealth.from_detail({"interval_s": 0.01}).interval_s == 1.0
    assert KioskHealth.from_detail({"interval_s": -5}).interval_s == 60.0
