"""A wall clock set back is reported, and the order of records holds."""

from __future__ import annotations

from contract.sealing import OutboxPrivateKey
from tests.support.outbox import Clock, MakeOutbox, opened


def test_a_clock_set_back_is_reported_and_order_holds(
    make_outbox: MakeOutbox, server_key: OutboxPrivateKey
) -> None:
    clock = Clock()
    outbox = make_outbox(wall_clock=clock.wall, monotonic_clock=clock.mono, boot_id="boot-a")
    a = outbox.append("card.event", {"n": 1})
    clock.advance(5)
    clock.wall_ns -= 3600 * 10**9  # someone set the clock back an hour
    b = outbox.append("card.event", {"n": 2})
    assert b > a
    status = outbox.status()
    assert status.clock_back == 1
    assert "outbox.clock_back" in status.alarms
    kinds = [(r[2], r[3]) for r in opened(outbox, server_key)]
    assert kinds[1][0] == "outbox.clock_back"
    assert 3_590_000 <= kinds[1][1]["back_ms"] <= 3_600_000
    assert kinds[2] == ("card.event", {"n": 2})
    # ... and across a reboot (another boot id, the monotonic clock starting over)
    outbox.close()
    clock.mono_ns = 10**9
    clock.wall_ns -= 60 * 10**9
    rebooted = make_outbox(wall_clock=clock.wall, monotonic_clock=clock.mono, boot_id="boot-b")
    assert rebooted.append("card.event", {"n": 3}) > b
    assert rebooted.status().clock_back == 2
