"""Salvage: checking the outbox file, quarantining a damaged one and recovering its rows.

At open the file's header is checked and ``PRAGMA quick_check`` run. A damaged file is renamed
aside (``outbox.db.corrupt-<time>``, with its ``-wal``), the readable rows are copied into a
fresh file (scanning the table forward and backward around damaged pages), an
``outbox.quarantined`` record tells the server how many were recovered, the status reports
the quarantined file, and the kiosk goes on. Rows physically destroyed on a damaged page are
lost; the server sees them as a gap in the ``prev`` chain.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.outbox.database import PARKED_COLUMNS, RECORD_COLUMNS, Row, as_int
from kiosk.outbox.disk import fsync_dir, storage_error
from kiosk.outbox.records import RECORD_OVERHEAD

SQLITE_MAGIC = b"SQLite format 3\x00"

# "SELECT *" on these tables yields the columns in this order
_SCANS = {
    "records": (
        "SELECT * FROM records ORDER BY seq ASC",
        "SELECT * FROM records ORDER BY seq DESC",
    ),
    "parked": (
        "SELECT * FROM parked ORDER BY seq ASC",
        "SELECT * FROM parked ORDER BY seq DESC",
    ),
}


@dataclass(frozen=True)
class Salvage:
    """What was read out of a quarantined file, waiting to go into the fresh one."""

    #: Why the file was quarantined, and where it went.
    problem: str
    file: str
    rows: list[Row] = field(default_factory=list)
    parked: list[Row] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def notice(self) -> dict[str, Any]:
        """The payload of the ``outbox.quarantined`` record."""
        return {
            "problem": self.problem,
            "file": self.file,
            "recovered": len(self.rows),
            "recovered_parked": len(self.parked),
        }


def check_file(path: Path, busy_timeout_s: float) -> str | None:
    """Why the database file is unusable, or None when it is fine (or absent).

    Raises the outbox's storage errors when the file cannot even be read.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(100)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise storage_error(exc, path.parent) from exc
    if not head:
        return None
    if not head.startswith(SQLITE_MAGIC) or len(head) < 100:
        return "not an SQLite database (bad header)"
    conn = None
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_s)
        rows = conn.execute("PRAGMA quick_check").fetchall()
        if rows != [("ok",)]:
            return f"quick_check failed ({len(rows)} problems)"
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        name = getattr(exc, "sqlite_errorname", "")
        if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or not name:
            return f"unreadable ({name or type(exc).__name__})"
        raise storage_error(exc, path.parent) from exc
    finally:
        if conn is not None:
            conn.close()
    return None


def quarantine(path: Path, problem: str, *, wall_ns: int, busy_timeout_s: float) -> Salvage:
    """Move the damaged file (with its ``-wal`` and ``-shm``) aside; what could be read of it."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(wall_ns / 1e9))
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 0
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    try:
        blocker = _hold_writers(path, busy_timeout_s)
        try:
            for suffix in ("", "-wal", "-shm"):
                source = Path(str(path) + suffix)
                if source.exists():
                    source.rename(Path(str(target) + suffix))
            fsync_dir(path.parent)
        finally:
            if blocker is not None:
                blocker.close()
    except OSError as exc:
        raise storage_error(exc, path.parent) from exc
    rows, parked, meta = _read_what_survives(target)
    return Salvage(problem, target.name, rows, parked, meta)


def restore(conn: sqlite3.Connection, salvage: Salvage) -> None:
    """Copy the salvaged rows and counters into the fresh database, in the open transaction."""
    rows, parked, old_meta = salvage.rows, salvage.parked, salvage.meta
    conn.executemany("INSERT OR IGNORE INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.executemany(
        "INSERT OR IGNORE INTO parked VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", parked
    )
    sizes = sum(len(r[8]) + RECORD_OVERHEAD for r in rows) + sum(
        len(r[8]) + RECORD_OVERHEAD for r in parked
    )
    seqs = [r[0] for r in rows] + [r[0] for r in parked]
    last = max([*seqs, as_int(old_meta.get("last_seq"))], default=0)
    values = {
        "last_seq": last,
        "server_high_water": as_int(old_meta.get("server_high_water")),
        "records": len(rows),
        "parked": len(parked),
        "bytes": sizes,
        "refused": as_int(old_meta.get("refused")),
        "clock_back": as_int(old_meta.get("clock_back")),
        "quarantined": as_int(old_meta.get("quarantined")) + 1,
        "last_wall_ns": as_int(old_meta.get("last_wall_ns")),
        "last_mono_ns": as_int(old_meta.get("last_mono_ns")),
    }
    conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(values.items()))
    boot = old_meta.get("last_boot")
    if isinstance(boot, str):
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('last_boot', ?)", (boot,))


def _hold_writers(path: Path, timeout_s: float) -> sqlite3.Connection | None:
    """Take the write lock of a damaged database while it is moved aside, when possible."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=timeout_s)
    except sqlite3.Error:
        return None
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error:
        conn.close()
        return None
    return conn


def _valid_row(row: Sequence[Any], width: int) -> bool:
    if len(row) != width:
        return False
    ints = (row[0], row[1], row[4], row[5])
    texts = (row[2], row[3], row[6], row[7])
    return (
        all(type(v) is int for v in ints)
        and all(isinstance(v, str) for v in texts)
        and isinstance(row[8], bytes)
        and row[0] > 0
    )


def _scan(conn: sqlite3.Connection, table: str, width: int) -> dict[int, Row]:
    """Every row of ``table`` readable forward and backward around damaged pages."""
    found: dict[int, Row] = {}
    for query in _SCANS[table]:
        with contextlib.suppress(sqlite3.DatabaseError):
            for row in conn.execute(query):
                if _valid_row(row, width):
                    found.setdefault(row[0], tuple(row))
    return found


def _read_what_survives(path: Path) -> tuple[list[Row], list[Row], dict[str, Any]]:
    """The readable queued rows, parked rows and meta values of a quarantined file."""
    rows: dict[int, Row] = {}
    parked: dict[int, Row] = {}
    meta: dict[str, Any] = {}
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error:
        return [], [], {}
    try:
        with contextlib.suppress(sqlite3.DatabaseError):
            conn.execute("PRAGMA cell_size_check=ON")
        rows = _scan(conn, "records", RECORD_COLUMNS)
        parked = _scan(conn, "parked", PARKED_COLUMNS)
        with contextlib.suppress(sqlite3.DatabaseError):
            meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
    finally:
        conn.close()
    return (
        [rows[k] for k in sorted(rows)],
        [parked[k] for k in sorted(parked) if k not in rows],
        meta,
    )
