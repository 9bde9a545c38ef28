"""Sequence numbers never go back: across restarts, two processes, a restored backup."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from contract.outbox_record import MAX_SEQUENCE
from contract.sealing import OutboxPrivateKey
from kiosk.errors import OutboxError
from kiosk.outbox.sequence import EPOCH_SHIFT, next_sequence
from tests.support.outbox import Clock, MakeOutbox, opened


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


def test_the_next_sequence_stays_above_the_last_the_floor_and_the_servers_mark() -> None:
    floor = 7 << EPOCH_SHIFT
    assert next_sequence(floor=floor, last_seq=5, server_high_water=0) == floor
    assert next_sequence(floor=floor, last_seq=floor + 4, server_high_water=0) == floor + 5
    assert next_sequence(floor=floor, last_seq=floor, server_high_water=floor + 9) == floor + 10
    assert next_sequence(floor=0, last_seq=MAX_SEQUENCE - 1, server_high_water=0) == MAX_SEQUENCE
    with pytest.raises(OutboxError, match="used up"):
        next_sequence(floor=0, last_seq=MAX_SEQUENCE, server_high_water=0)


def test_a_damaged_epoch_file_still_moves_to_a_new_epoch(
    make_outbox: MakeOutbox, tmp_path: Path
) -> None:
    clock = Clock()
    outbox = make_outbox(wall_clock=clock.wall, monotonic_clock=clock.mono)
    first = outbox.append("card.event", {})
    outbox.close()
    (tmp_path / "outbox" / "outbox.db.epoch").write_text("{not json")
    again = make_outbox(wall_clock=clock.wall, monotonic_clock=clock.mono)
    second = again.append("card.event", {})
    # the database's last sequence alone puts the next start above every earlier epoch
    assert second >> EPOCH_SHIFT == (first >> EPOCH_SHIFT) + 1
