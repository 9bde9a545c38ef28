"""The outbox's SQLite file: how it is opened, its tables and meta counters, a row as a record.

Every connection runs in WAL mode with ``synchronous=FULL`` (a commit returns after its
fsync) and checks cell sizes as it reads. ``records`` holds the queue, ``parked`` the records
the server refused for good (with why and when), ``meta`` the device id and the counters the
status reports, kept up to date in the same transaction as the rows they count.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from contract.outbox_record import RecordHeader, SealedRecord
from kiosk.errors import StorageUnavailable

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY, prev INTEGER NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL,
    wall_ns INTEGER NOT NULL, mono_ns INTEGER NOT NULL, boot_id TEXT NOT NULL,
    key_id TEXT NOT NULL, sealed BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS parked (
    seq INTEGER PRIMARY KEY, prev INTEGER NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL,
    wall_ns INTEGER NOT NULL, mono_ns INTEGER NOT NULL, boot_id TEXT NOT NULL,
    key_id TEXT NOT NULL, sealed BLOB NOT NULL,
    reason TEXT NOT NULL, parked_wall_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID;
"""
#: Columns of a ``records`` row; a ``parked`` row adds the reason and when.
RECORD_COLUMNS = 9
PARKED_COLUMNS = 11
INSERT_RECORD = "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"

#: The integer values of ``meta`` (0 when absent or not an integer).
COUNTERS = (
    "last_seq",
    "server_high_water",
    "records",
    "parked",
    "bytes",
    "refused",
    "clock_back",
    "quarantined",
    "last_wall_ns",
    "last_mono_ns",
)

Row = tuple[Any, ...]


def connect(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """A connection to the outbox file (created when absent), in WAL with full sync.

    Raises sqlite3 and OS errors as they come (the caller translates them), and
    ``StorageUnavailable`` when the file system does not allow WAL.
    """
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
    conn = sqlite3.connect(
        path,
        isolation_level=None,
        check_same_thread=False,
        timeout=busy_timeout_s,
    )
    try:
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StorageUnavailable(
                f"the outbox cannot use WAL (journal mode {mode})", "read_only"
            )
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA cell_size_check=ON")
        conn.execute("PRAGMA trusted_schema=OFF")
        conn.execute("PRAGMA journal_size_limit=4194304")
    except BaseException:
        conn.close()
        raise
    return conn


def create_tables(conn: sqlite3.Connection) -> None:
    """The tables, where they are missing (in the caller's transaction)."""
    for statement in SCHEMA.strip().split(";"):
        if statement.strip():
            conn.execute(statement)


def default_meta(conn: sqlite3.Connection) -> None:
    """Every counter and setting ``meta`` lacks, at its starting value."""
    for name in COUNTERS:
        conn.execute("INSERT OR IGNORE INTO meta VALUES (?, 0)", (name,))
    conn.execute("INSERT OR IGNORE INTO meta VALUES ('level', 'ok')")
    conn.execute("INSERT OR IGNORE INTO meta VALUES ('last_boot', '')")


def as_int(value: Any) -> int:
    """A stored counter: the integer, or 0 for anything else."""
    return value if type(value) is int else 0


def read_meta(conn: sqlite3.Connection) -> dict[str, Any]:
    """Every ``meta`` value, the counters as integers."""
    meta: dict[str, Any] = dict(conn.execute("SELECT name, value FROM meta").fetchall())
    for name in COUNTERS:
        meta[name] = as_int(meta.get(name))
    return meta


def row_to_record(device_id: str, row: Sequence[Any]) -> SealedRecord:
    """A ``records`` row as the record the uploader sends."""
    seq, prev, key, kind, wall_ns, mono_ns, boot_id, key_id, sealed = row
    header = RecordHeader(device_id, seq, prev, key, kind, wall_ns, mono_ns, boot_id, key_id)
    return SealedRecord(header, bytes(sealed))
