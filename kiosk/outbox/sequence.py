"""Sequence numbers that never go back: the epoch file and the next sequence.

Each record gets a per-device sequence number that rises and is never reused, even across
restarts, two processes appending, and a restored backup of the SD card. It is a 63-bit
integer whose upper bits are an *epoch* and lower 31 bits count within it::

    seq = max(last_seq + 1, floor, server_high_water + 1)        in one write transaction
    floor = epoch << 31, fixed by the first append after the outbox is opened
    epoch = max(epoch_file + 1, wall-clock seconds, (last_seq >> 31) + 1,
                (server_high_water >> 31) + 1)

* ``last_seq`` lives in the database and is read inside the same write transaction, so two
  processes appending to one file interleave without ever going back.
* The epoch is written to a small file beside the database (``outbox.db.epoch``, replaced
  atomically and fsynced) before the first append, so it survives a database that had to be
  quarantined, and every start moves to a new epoch.
* A restored backup brings back an old database *and* an old epoch file; the wall clock
  (seconds since the epoch, which the restore does not turn back) then puts the new epoch
  above every epoch used before, because an epoch is never started ahead of the clock it was
  started with unless a previous start forced it up.
* ``server_high_water`` is the highest sequence the server reported holding for this device;
  the uploader stores it after every acknowledgement, and appends stay above it.

Only a restored backup *and* a clock set back *and* no contact with the server yet could make
a number come back; the server then finds the same (device, seq) with a different idempotency
key, keeps both and reports a conflict, so even that loses nothing silently.

Every record also carries ``prev``, the sequence of the record appended before it: sequence
numbers jump between epochs, and the server finds a gap wherever a ``prev`` is missing.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from contract.outbox_record import MAX_SEQUENCE
from kiosk.errors import OutboxError
from kiosk.outbox.disk import replace_durably

EPOCH_SHIFT = 31
MAX_EPOCH = (MAX_SEQUENCE >> EPOCH_SHIFT) - 1


def epoch_path_for(database: Path) -> Path:
    """Where the epoch of the outbox database ``database`` is kept by default."""
    return database.with_name(database.name + ".epoch")


def advance_epoch(epoch_path: Path, *, wall_ns: int, last_seq: int, server_high_water: int) -> int:
    """Move to a new epoch, persisted before any append uses it; the sequence floor.

    Raises OSError when the epoch file cannot be written (the caller translates it).
    """
    stored = 0
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        stored = int(json.loads(epoch_path.read_text())["epoch"])
    now_s = min(max(wall_ns // 1_000_000_000, 0), MAX_EPOCH)
    epoch = max(
        stored + 1,
        now_s,
        (last_seq >> EPOCH_SHIFT) + 1,
        (server_high_water >> EPOCH_SHIFT) + 1,
    )
    epoch = min(epoch, MAX_EPOCH)
    replace_durably(epoch_path, json.dumps({"epoch": epoch}).encode("ascii"))
    floor: int = epoch << EPOCH_SHIFT
    return floor


def next_sequence(*, floor: int, last_seq: int, server_high_water: int) -> int:
    """The sequence of the next record: above the last, the floor and the server's mark."""
    seq = max(last_seq + 1, floor, server_high_water + 1)
    if seq > MAX_SEQUENCE:
        raise OutboxError("the outbox sequence space is used up")
    return seq
