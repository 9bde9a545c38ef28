"""The outbox on its own: durable appends, rising sequences, the bound, the clock."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk.errors import ConfigError, OutboxFull
from kiosk.outbox.sealing import OutboxPrivateKey
from kiosk.outbox.store import EPOCH_SHIFT, Outbox, wire_size

NOW = 1_790_000_000 * 10**9
MakeOutbox = Callable[..., Outbox]


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


def opened(outbox: Outbox, key: OutboxPrivateKey) -> list[tuple[int, int, str, dict]]:
    """(seq, prev, kind, payload) of every queued record, decrypted with the server's key."""
    opener = key.opener()
    return [
        (r.seq, r.header.prev, r.header.kind, json.loads(opener.open(r.sealed, r.header)))
        for r in outbox.pending(max_records=100_000, max_bytes=1 << 40)
    ]


def test_append_is_durable_and_survives_reopening(
    make_outbox: MakeOutbox, server_key: OutboxPrivateKey, tmp_path: Path
) -> None:
    outbox = make_outbox()
    seqs = [outbox.append("card.event", {"n": i}) for i in range(5)]
    conn = outbox._db()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: fsync per commit
    outbox.close()
    again = make_outbox()
    assert [(s, p["n"]) for s, _, _, p in opened(again, server_key)] == list(
        zip(seqs, range(5), strict=True)
    )


def test_sequences_rise_across_restarts_even_with_a_frozen_clock(make_outbox: MakeOutbox) -> None:
    clock = Clock()
    seen: list[int] = []
    for _ in range(4):
        outbox = make_outbox(wall_clock=clock.wall, monotonic_clock=clock.mono)
        seen += [outbox.append("flow.transition", {"to": "idle"}) for _ in range(3)]
        outbox.close()
    assert seen == sorted(seen)
    assert len(set(seen)) == len(seen)
    # each start took a new epoch
    assert len({s >> EPOCH_SHIFT for s in seen}) == 4


def test_two_processes_appending_to_one_file_never_go_back(
    make_outbox: MakeOutbox, server_key: OutboxPrivateKey
) -> None:
    first, second = make_outbox(), make_outbox()
    seqs = []
    for i in range(6):
        seqs.append((first if i % 2 else second).append("card.event", {"i": i}))
    assert seqs == sorted(seqs)
    records = opened(first, server_key)
    assert [r[3]["i"] for r in records] == list(range(6))
    # every record names the one before it
    assert [r[1] for r in records[1:]] == [r[0] for r in records[:-1]]


def test_a_restored_backup_never_hands_out_a_sequence_again(
    make_outbox: MakeOutbox, tmp_path: Path
) -> None:
    clock = Clock()
    outbox = make_outbox(wall_clock=clock.wall, monotonic_clock=clock.mono)
    outbox.append("card.event", {"n": 0})
    outbox.close()
    folder = tmp_path / "outbox"
    backup = tmp_path / "backup"
    shutil.copytree(folder, backup)  # the SD card image taken here
    used = []
    for _ in range(3):  # days of use after the backup, with restarts
        clock.advance(3600)
        outbox = make_outbox(wall_clock=clock.wall, monotonic_clock=clock.mono)
        used += [outbox.append("card.event", {"n": 1}) for _ in range(50)]
        outbox.close()
    shutil.rmtree(folder)
    shutil.copytree(backup, folder)  # the card is restored: old database, old epoch file
    clock.advance(1)
    restored = make_outbox(wall_clock=clock.wall, monotonic_clock=clock.mono)
    after = [restored.append("card.event", {"n": 2}) for _ in range(10)]
    assert min(after) > max(used)


def test_after_a_restore_with_the_clock_set_back_the_servers_mark_keeps_numbers_new(
    make_outbox: MakeOutbox, tmp_path: Path
) -> None:
    clock = Clock()
    outbox = make_outbox(wall_clock=clock.wall, monotonic_clock=clock.mono)
    outbox.append("card.event", {})
    outbox.close()
    shutil.copytree(tmp_path / "outbox", tmp_path / "backup")
    outbox = make_outbox(wall_clock=clock.wall, monotonic_clock=clock.mono)
    used = [outbox.append("card.event", {}) for _ in range(20)]
    outbox.close()
    shutil.rmtree(tmp_path / "outbox")
    shutil.copytree(tmp_path / "backup", tmp_path / "outbox")
    clock.wall_ns -= 86400 * 10**9  # no RTC, no NTP yet: the clock is a day behind
    restored = make_outbox(wall_clock=clock.wall, monotonic_clock=clock.mono)
    # the uploader's first acknowledgement tells the server's high-water mark
    restored.acknowledge([], high_water=max(used))
    assert restored.append("card.event", {}) > max(used)


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


def test_the_alarm_comes_long_before_anything_is_refused(
    make_outbox: MakeOutbox, server_key: OutboxPrivateKey
) -> None:
    outbox = make_outbox(max_bytes=128 * 1024, warn_fraction=0.5)
    levels = []
    appended = 0
    refused = False
    while not refused and appended < 1000:
        try:
            outbox.append("card.event", {"pad": "x" * 300})
        except OutboxFull:
            refused = True
            continue
        appended += 1
        levels.append(outbox.status().level)
    assert refused
    first_warning = levels.index("warning")
    assert first_warning < appended * 0.6  # warned at half, refused only when full
    status = outbox.status()
    assert status.level == "full"
    assert status.refused == 1
    assert "outbox.full" in status.alarms
    notices = [p for _, _, kind, p in opened(outbox, server_key) if kind == "outbox.level"]
    assert [n["level"] for n in notices] == ["warning", "full"]
    assert notices[1]["refused"] == 1
    # nothing appended was dropped to make room
    assert sum(1 for r in opened(outbox, server_key) if r[2] == "card.event") == appended
    # the uploader drains: appends work again and the level says so
    outbox.acknowledge([r.seq for r in outbox.pending(max_records=10_000, max_bytes=1 << 30)])
    outbox.append("card.event", {"after": True})
    assert outbox.status().level == "ok"


def test_payload_errors_never_echo_the_payload(make_outbox: MakeOutbox) -> None:
    outbox = make_outbox()
    with pytest.raises(ValueError, match="plain JSON") as caught:
        outbox.append("card.event", {"name": "山田太郎", "when": object()})
    assert "山田" not in str(caught.value)
    with pytest.raises(ValueError, match="kind"):
        outbox.append("Card Event!", {})
    with pytest.raises(ValueError, match="at most"):
        outbox.append("card.event", {"big": "x" * 17_000})
    assert outbox.status().records == 0


def test_an_outbox_of_another_device_is_refused(make_outbox: MakeOutbox) -> None:
    make_outbox().close()
    with pytest.raises(ConfigError, match=r"holds the outbox of device"):
        make_outbox(device_id="kiosk-other")


def test_parked_records_are_kept_with_their_reason_and_can_be_queued_again(
    make_outbox: MakeOutbox, server_key: OutboxPrivateKey
) -> None:
    outbox = make_outbox()
    seqs = [outbox.append("card.event", {"n": i}) for i in range(3)]
    assert outbox.park(seqs[:2], "HTTP 422: bad batch") == 2
    status = outbox.status()
    assert (status.records, status.parked) == (2, 2)  # one left + the outbox.parked notice
    assert "outbox.parked" in status.alarms
    assert outbox.parked_reasons() == [("HTTP 422: bad batch", 2)]
    notice = [p for _, _, k, p in opened(outbox, server_key) if k == "outbox.parked"]
    assert notice == [
        {"count": 2, "first": seqs[0], "last": seqs[1], "reason": "HTTP 422: bad batch"}
    ]
    assert outbox.unpark() == 2
    assert outbox.status().parked == 0
    assert [r.seq for r in outbox.pending(max_records=10, max_bytes=1 << 20)][:3] == seqs


def test_acknowledge_deletes_exactly_what_was_acknowledged(make_outbox: MakeOutbox) -> None:
    outbox = make_outbox()
    seqs = [outbox.append("card.event", {"n": i}) for i in range(10)]
    assert outbox.acknowledge([seqs[1], seqs[3], 12345]) == 2
    left = [r.seq for r in outbox.pending(max_records=100, max_bytes=1 << 20)]
    assert left == [s for s in seqs if s not in (seqs[1], seqs[3])]
    status = outbox.status()
    assert status.records == 8
    raw = outbox._db().execute("SELECT sum(length(sealed)) + count(*) * 160 FROM records")
    assert status.bytes == raw.fetchone()[0]


def test_pending_respects_both_bounds(make_outbox: MakeOutbox) -> None:
    outbox = make_outbox()
    outbox.append_many([("card.event", {"n": i}) for i in range(20)])
    assert len(outbox.pending(max_records=7, max_bytes=1 << 20)) == 7
    one = outbox.pending(max_records=1, max_bytes=1 << 20)[0]
    size = wire_size(len(one.sealed))
    assert len(outbox.pending(max_records=20, max_bytes=size * 3)) == 3
    assert len(outbox.pending(max_records=20, max_bytes=1)) == 1  # never an empty batch


def test_a_quarantined_file_under_a_running_process_is_followed(
    make_outbox: MakeOutbox, tmp_path: Path
) -> None:
    first = make_outbox()
    first.append("card.event", {})
    db = tmp_path / "outbox" / "outbox.db"
    aside = tmp_path / "outbox" / "outbox.db.corrupt-x"
    db.rename(aside)
    for suffix in ("-wal", "-shm"):
        if Path(str(db) + suffix).exists():
            Path(str(db) + suffix).rename(Path(str(aside) + suffix))
    seq = first.append("card.event", {"after": True})  # reopens the fresh file
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT seq FROM records").fetchall() == [(seq,)]
    finally:
        conn.close()
