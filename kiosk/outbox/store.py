"""The outbox: a durable, bounded, sealed queue of log records in one SQLite file.

Any part of the kiosk logs with ``Outbox.append(kind, payload) -> seq``: the payload (a JSON
mapping) is sealed to the clinic server's public key and the call returns only after the
record is on disk (WAL, ``synchronous=FULL``: the commit's fsync happens before the return).
The uploader (``kiosk uploader``, its own process) reads the same file, sends records in
sequence order and deletes exactly what the server acknowledged. Both processes use short
``BEGIN IMMEDIATE`` transactions and a busy timeout, so either can be killed at any moment
without harming the other: SQLite's WAL makes every transaction all-or-nothing.

Sequence numbers
----------------
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

Clock
-----
Each record holds the wall-clock and the monotonic time of its append, with the kernel's boot
id. When the wall clock went back (by more than two seconds against the monotonic clock in the
same boot, or against the last record across a reboot) the outbox appends an
``outbox.clock_back`` record before the caller's, counts it in the status, and goes on: order
comes from the sequence, never from the wall clock.

Size
----
``max_bytes`` bounds the sealed bytes kept (queued and parked records, each counted with a
fixed overhead). At ``warn_fraction`` of it the status level turns ``warning`` (the amber LED,
the heartbeat and an ``outbox.level`` record carry it to the dashboard) long before anything
is refused; at the bound, ``append`` raises ``OutboxFull``: the caller learns its record was
not stored, the refusal is counted, and the level turns ``full``. Nothing is dropped silently.
The outbox's own notices (level, clock, quarantine, parking) are small and may exceed the
bound so the alarm itself always gets through.

Damage
------
At open the file's header is checked and ``PRAGMA quick_check`` run. A damaged file is renamed
aside (``outbox.db.corrupt-<time>``, with its ``-wal``), the readable rows are copied into a
fresh file (scanning the table forward and backward around damaged pages), an
``outbox.quarantined`` record tells the server how many were recovered, the status reports
the quarantined file, and the kiosk goes on. Disk full, a read-only file system and I/O errors
raise ``StorageUnavailable`` with a ``reason``; every record acknowledged before stays.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kiosk.errors import ConfigError, OutboxCorrupt, OutboxError, OutboxFull, StorageUnavailable
from kiosk.outbox.record import MAX_SEQUENCE, Backlog, RecordHeader, SealedRecord, check_kind
from kiosk.outbox.sealing import OutboxPublicKey, Sealer

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_WARN_FRACTION = 0.5
#: Bytes counted per record on top of its sealed body (row, header, index).
RECORD_OVERHEAD = 160
#: Bytes a record's header takes in a JSON batch (its sealed body goes as base64).
WIRE_OVERHEAD = 320
#: The largest payload (as JSON) one record may carry.
MAX_PAYLOAD_BYTES = 16 * 1024
EPOCH_SHIFT = 31
_MAX_EPOCH = (MAX_SEQUENCE >> EPOCH_SHIFT) - 1
#: How far the wall clock may fall behind the monotonic clock before it counts as set back.
CLOCK_BACK_TOLERANCE_NS = 2_000_000_000
_SQLITE_MAGIC = b"SQLite format 3\x00"

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
_SCHEMA = """
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
_COUNTERS = (
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

WallClock = Callable[[], int]
MonotonicClock = Callable[[], int]


def read_boot_id(proc: Path = Path("/proc")) -> str:
    """The kernel's boot id, or a random one when /proc does not tell (not Linux)."""
    try:
        return (proc / "sys/kernel/random/boot_id").read_text().strip() or secrets.token_hex(16)
    except OSError:
        return secrets.token_hex(16)


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """The canonical JSON of a payload; ValueError naming only the type when it cannot be."""
    if not isinstance(payload, Mapping):
        raise ValueError(f"a record payload must be a mapping, not {type(payload).__name__}")
    try:
        body = json.dumps(
            dict(payload),
            ensure_ascii=False,
            sort_keys=True,
            separators=(",", ":"),
            allow_nan=False,
        ).encode("utf-8")
    except (TypeError, ValueError) as exc:
        # never echo the payload: it may hold personal data
        raise ValueError(f"a record payload must be plain JSON ({type(exc).__name__})") from None
    if len(body) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"a record payload may hold at most {MAX_PAYLOAD_BYTES} bytes")
    return body


@dataclass(frozen=True)
class OutboxStatus:
    """What the kiosk shows about its outbox: LEDs, heartbeats, ``kiosk uploader status``."""

    device_id: str
    records: int
    bytes: int
    max_bytes: int
    warn_fraction: float
    level: str
    parked: int
    refused: int
    clock_back: int
    quarantined: int
    quarantine_files: tuple[str, ...]
    last_seq: int
    server_high_water: int
    oldest_wall_ns: int | None

    @property
    def fill(self) -> float:
        return self.bytes / self.max_bytes

    @property
    def alarms(self) -> tuple[str, ...]:
        """Stable codes of everything a person should look at; empty when all is well."""
        found = []
        if self.level != "ok":
            found.append(f"outbox.{self.level}")
        if self.parked:
            found.append("outbox.parked")
        if self.clock_back:
            found.append("outbox.clock_back")
        if self.quarantine_files:
            found.append("outbox.quarantined")
        return tuple(found)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["quarantine_files"] = list(self.quarantine_files)
        doc["fill"] = round(self.fill, 4)
        doc["alarms"] = list(self.alarms)
        return doc


def _storage_error(exc: BaseException, directory: Path) -> OutboxError:
    """An sqlite3 or OS error as the outbox's own, deciding disk-full and read-only."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    err = getattr(exc, "errno", None)
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return OutboxCorrupt(f"the outbox database is damaged ({name})")
    if name == "SQLITE_FULL" or err in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return StorageUnavailable("the disk under the outbox is full", "disk_full")
    if name.startswith("SQLITE_READONLY") or err == errno.EROFS or _read_only(directory):
        return StorageUnavailable("the file system under the outbox is read-only", "read_only")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StorageUnavailable("the outbox stayed locked past the busy timeout", "busy")
    if _nearly_full(directory):
        return StorageUnavailable("the disk under the outbox is full", "disk_full")
    return StorageUnavailable(f"the outbox storage failed ({name or type(exc).__name__})", "io")


def _read_only(directory: Path) -> bool:
    """Whether the file system refuses writes (mounted so, or turned so after an error)."""
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return True
        probe = directory / f".outbox-probe-{os.getpid()}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        return exc.errno == errno.EROFS
    os.close(fd)
    with contextlib.suppress(OSError):
        probe.unlink()
    return False


def _nearly_full(directory: Path) -> bool:
    try:
        st = os.statvfs(directory)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Outbox:
    """The kiosk's durable sealed log queue (see the module docstring).

    Safe to share between the threads of one process; any number of processes may open the
    same file. Close it (or use it as a context manager) when done.
    """

    def __init__(
        self,
        path: Path,
        *,
        device_id: str,
        public_key: OutboxPublicKey,
        max_bytes: int = DEFAULT_MAX_BYTES,
        warn_fraction: float = DEFAULT_WARN_FRACTION,
        wall_clock: WallClock = time.time_ns,
        monotonic_clock: MonotonicClock = time.monotonic_ns,
        boot_id: str | None = None,
        busy_timeout_s: float = 5.0,
        epoch_path: Path | None = None,
    ) -> None:
        if max_bytes < 64 * 1024:
            raise ConfigError("outbox max_bytes must be at least 64 KiB")
        if not 0.0 < warn_fraction < 1.0:
            raise ConfigError("outbox warn_fraction must lie between 0 and 1")
        self.path = Path(path)
        self.device_id = device_id
        self.max_bytes = max_bytes
        self.warn_fraction = warn_fraction
        self._sealer: Sealer = public_key.sealer()
        self._seal_overhead = self._sealer.overhead
        self._wall = wall_clock
        self._mono = monotonic_clock
        self._boot_id = boot_id or read_boot_id()
        self._busy_timeout_s = busy_timeout_s
        self._epoch_path = epoch_path or self.path.with_name(self.path.name + ".epoch")
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._inode = 0
        self._floor = 0
        self._pending_recovery: _Recovered = ([], [], {})
        self._open()

    # -- opening ------------------------------------------------------------------------------

    def _open(self) -> None:
        directory = self.path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(
                self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600
            )
        except OSError as exc:
            raise _storage_error(exc, directory) from exc
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            problem = self._check_file()
            recovered: dict[str, Any] | None = None
            if problem is not None:
                recovered = self._quarantine(problem)
            try:
                self._connect()
                self._ensure_schema(recovered)
                self._floor = 0  # a new epoch is taken at the first append
                if recovered is not None:
                    self._append_notices([("outbox.quarantined", recovered)])
            except sqlite3.Error as exc:
                self._close_conn()
                raise _storage_error(exc, directory) from exc
            except OSError as exc:
                self._close_conn()
                raise _storage_error(exc, directory) from exc
        finally:
            os.close(lock_fd)  # closing releases the lock

    def _check_file(self) -> str | None:
        """Why the database file is unusable, or None when it is fine (or absent)."""
        try:
            with open(self.path, "rb") as f:
                head = f.read(100)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _storage_error(exc, self.path.parent) from exc
        if not head:
            return None
        if not head.startswith(_SQLITE_MAGIC) or len(head) < 100:
            return "not an SQLite database (bad header)"
        conn = None
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=self._busy_timeout_s)
            rows = conn.execute("PRAGMA quick_check").fetchall()
            if rows != [("ok",)]:
                return f"quick_check failed ({len(rows)} problems)"
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            name = getattr(exc, "sqlite_errorname", "")
            if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or not name:
                return f"unreadable ({name or type(exc).__name__})"
            raise _storage_error(exc, self.path.parent) from exc
        finally:
            if conn is not None:
                conn.close()
        return None

    def _quarantine(self, problem: str) -> dict[str, Any]:
        """Move the damaged file aside and copy its readable rows into a fresh one."""
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(self._wall() / 1e9))
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 0
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        try:
            blocker = _hold_writers(self.path, self._busy_timeout_s)
            try:
                for suffix in ("", "-wal", "-shm"):
                    source = Path(str(self.path) + suffix)
                    if source.exists():
                        source.rename(Path(str(target) + suffix))
                _fsync_dir(self.path.parent)
            finally:
                if blocker is not None:
                    blocker.close()
        except OSError as exc:
            raise _storage_error(exc, self.path.parent) from exc
        rows, parked, meta = _read_what_survives(target)
        self._pending_recovery = (rows, parked, meta)
        return {
            "problem": problem,
            "file": target.name,
            "recovered": len(rows),
            "recovered_parked": len(parked),
        }

    def _connect(self) -> None:
        if not self.path.exists():
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=self._busy_timeout_s,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_s * 1000)}")
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
        self._conn = conn
        self._inode = os.stat(self.path).st_ino

    def _ensure_schema(self, recovered: dict[str, Any] | None) -> None:
        conn = self._db()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.strip().split(";"):
                if statement.strip():
                    conn.execute(statement)
            meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
            if "device_id" not in meta:
                conn.execute("INSERT INTO meta VALUES ('device_id', ?)", (self.device_id,))
            elif meta["device_id"] != self.device_id:
                raise ConfigError(
                    f"{self.path} holds the outbox of device {meta['device_id']!r},"
                    f" not {self.device_id!r}"
                )
            if recovered is not None:
                self._restore_rows(conn, meta)
            for name in _COUNTERS:
                conn.execute("INSERT OR IGNORE INTO meta VALUES (?, 0)", (name,))
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('level', 'ok')")
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('last_boot', '')")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        _fsync_dir(self.path.parent)

    def _restore_rows(self, conn: sqlite3.Connection, meta: dict[str, Any]) -> None:
        rows, parked, old_meta = self._pending_recovery
        conn.executemany("INSERT OR IGNORE INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.executemany(
            "INSERT OR IGNORE INTO parked VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", parked
        )
        sizes = sum(len(r[8]) + RECORD_OVERHEAD for r in rows) + sum(
            len(r[8]) + RECORD_OVERHEAD for r in parked
        )
        seqs = [r[0] for r in rows] + [r[0] for r in parked]
        last = max([*seqs, _int(old_meta.get("last_seq"))], default=0)
        values = {
            "last_seq": last,
            "server_high_water": _int(old_meta.get("server_high_water")),
            "records": len(rows),
            "parked": len(parked),
            "bytes": sizes,
            "refused": _int(old_meta.get("refused")),
            "clock_back": _int(old_meta.get("clock_back")),
            "quarantined": _int(old_meta.get("quarantined")) + 1,
            "last_wall_ns": _int(old_meta.get("last_wall_ns")),
            "last_mono_ns": _int(old_meta.get("last_mono_ns")),
        }
        conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(values.items()))
        boot = old_meta.get("last_boot")
        if isinstance(boot, str):
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('last_boot', ?)", (boot,))
        self._pending_recovery = ([], [], {})

    def _advance_epoch(self, meta: dict[str, Any]) -> int:
        """Move to a new epoch, persisted before any append uses it; the sequence floor."""
        stored = 0
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            stored = int(json.loads(self._epoch_path.read_text())["epoch"])
        now_s = min(max(self._wall() // 1_000_000_000, 0), _MAX_EPOCH)
        epoch = max(
            stored + 1,
            now_s,
            (meta["last_seq"] >> EPOCH_SHIFT) + 1,
            (meta["server_high_water"] >> EPOCH_SHIFT) + 1,
        )
        epoch = min(epoch, _MAX_EPOCH)
        tmp = self._epoch_path.with_name(self._epoch_path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps({"epoch": epoch}).encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._epoch_path)
        _fsync_dir(self._epoch_path.parent)
        floor: int = epoch << EPOCH_SHIFT
        return floor

    # -- plumbing -----------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise OutboxError("the outbox is closed")
        return self._conn

    def _close_conn(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    @staticmethod
    def _read_meta(conn: sqlite3.Connection) -> dict[str, Any]:
        meta: dict[str, Any] = dict(conn.execute("SELECT name, value FROM meta").fetchall())
        for name in _COUNTERS:
            meta[name] = _int(meta.get(name))
        return meta

    @contextlib.contextmanager
    def _write(self) -> Iterator[tuple[sqlite3.Connection, dict[str, Any]]]:
        """One short write transaction with the meta values; the changed ones are saved."""
        with self._lock:
            for attempt in (1, 2):
                conn = self._db()
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.Error as exc:
                    raise _storage_error(exc, self.path.parent) from exc
                try:
                    try:
                        if os.stat(self.path).st_ino != self._inode:
                            raise _Reopen
                    except FileNotFoundError:
                        raise _Reopen from None
                    meta = self._read_meta(conn)
                    before = dict(meta)
                    yield conn, meta
                    changed = [
                        (k, v)
                        for k, v in meta.items()
                        if not k.startswith("_") and before.get(k) != v
                    ]
                    if changed:
                        conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", changed)
                    conn.execute("COMMIT")
                    return
                except _Reopen:
                    self._rollback(conn)
                    if attempt == 2:
                        raise OutboxCorrupt("the outbox file keeps being replaced") from None
                    # another process quarantined the file: follow it to the fresh one
                    self._close_conn()
                    self._open()
                except (sqlite3.Error, OSError) as exc:
                    self._rollback(conn)
                    raise _storage_error(exc, self.path.parent) from exc
                except BaseException:
                    self._rollback(conn)
                    raise

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        with contextlib.suppress(sqlite3.Error):
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    def _next_seq(self, meta: dict[str, Any]) -> int:
        if not self._floor:
            # taken lazily, so a process that only drains (the uploader on a full disk) opens
            # without writing anything
            self._floor = self._advance_epoch(meta)
        seq: int = max(meta["last_seq"] + 1, self._floor, meta["server_high_water"] + 1)
        if seq > MAX_SEQUENCE:
            raise OutboxError("the outbox sequence space is used up")
        return seq

    def _insert(
        self, conn: sqlite3.Connection, meta: dict[str, Any], kind: str, body: bytes
    ) -> int:
        seq = self._next_seq(meta)
        header = RecordHeader(
            device_id=self.device_id,
            seq=seq,
            prev=meta["last_seq"],
            key=secrets.token_hex(16),
            kind=kind,
            wall_ns=meta["_now_wall"],
            mono_ns=meta["_now_mono"],
            boot_id=self._boot_id,
            key_id=self._sealer.key_id,
        )
        sealed = self._sealer.seal(body, header)
        conn.execute(
            "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, header.prev, header.key, kind, header.wall_ns, header.mono_ns,
             header.boot_id, header.key_id, sealed),
        )  # fmt: skip
        meta["last_seq"] = seq
        meta["records"] += 1
        meta["bytes"] += len(sealed) + RECORD_OVERHEAD
        return seq

    def _stamp(self, conn: sqlite3.Connection, meta: dict[str, Any]) -> None:
        """Read the clocks for this transaction; note a wall clock that went back."""
        wall, mono = self._wall(), self._mono()
        meta["_now_wall"], meta["_now_mono"] = wall, mono
        last_wall, last_mono = meta["last_wall_ns"], meta["last_mono_ns"]
        if last_wall:
            if meta.get("last_boot") == self._boot_id:
                back = last_wall + (mono - last_mono) - wall
            else:
                back = last_wall - wall
            if back > CLOCK_BACK_TOLERANCE_NS:
                meta["clock_back"] += 1
                notice = {"back_ms": back // 1_000_000, "times": meta["clock_back"]}
                self._insert(conn, meta, "outbox.clock_back", encode_payload(notice))
        meta["last_wall_ns"], meta["last_mono_ns"] = wall, mono
        meta["last_boot"] = self._boot_id

    def _settle_level(self, conn: sqlite3.Connection, meta: dict[str, Any], level: str) -> None:
        if meta.get("level") != level:
            meta["level"] = level
            notice = {
                "level": level,
                "bytes": meta["bytes"],
                "max_bytes": self.max_bytes,
                "refused": meta["refused"],
            }
            self._insert(conn, meta, "outbox.level", encode_payload(notice))

    def _level_for(self, used: int) -> str:
        return "warning" if used >= self.warn_fraction * self.max_bytes else "ok"

    def _append_notices(self, notices: Sequence[tuple[str, Mapping[str, Any]]]) -> list[int]:
        """Append the outbox's own records, exempt from the size bound."""
        with self._write() as (conn, meta):
            self._stamp(conn, meta)
            seqs = [self._insert(conn, meta, k, encode_payload(p)) for k, p in notices]
            self._settle_level(conn, meta, self._level_for(meta["bytes"]))
        return seqs

    # -- appending ----------------------------------------------------------------------------

    def append(self, kind: str, payload: Mapping[str, Any]) -> int:
        """Seal and durably store one record; its sequence number.

        ``kind`` is a dotted lower-case code (``flow.transition``, ``card.removed``,
        ``pin.wrong``, ``staff.action``, ``verification.outcome``, ``heartbeat``); the payload
        a JSON mapping. Returns after the record is on disk. Raises ``OutboxFull`` when the
        bound is reached, ``StorageUnavailable`` when the disk refuses; in both cases this
        record was not stored and every earlier one still is. ValueError for a malformed kind
        or payload (a programming error; the message never echoes the payload).
        """
        return self.append_many([(kind, payload)])[0]

    def append_many(self, items: Iterable[tuple[str, Mapping[str, Any]]]) -> list[int]:
        """Append several records in one transaction (one fsync); their sequence numbers."""
        bodies = [(check_kind(kind), encode_payload(payload)) for kind, payload in items]
        if not bodies:
            return []
        needed = sum(len(b) + self._seal_overhead + RECORD_OVERHEAD for _, b in bodies)
        refused = False
        seqs: list[int] = []
        with self._write() as (conn, meta):
            self._stamp(conn, meta)
            if meta["bytes"] + needed > self.max_bytes:
                meta["refused"] += len(bodies)
                self._settle_level(conn, meta, "full")
                refused = True
            else:
                seqs = [self._insert(conn, meta, kind, body) for kind, body in bodies]
                self._settle_level(conn, meta, self._level_for(meta["bytes"]))
        if refused:
            raise OutboxFull(f"the outbox holds {self.max_bytes} bytes and is full: record refused")
        return seqs

    # -- the uploader's side ------------------------------------------------------------------

    def pending(self, *, max_records: int, max_bytes: int) -> list[SealedRecord]:
        """The oldest queued records in sequence order, within both bounds (at least one).

        ``max_bytes`` bounds the batch as it goes on the wire (``wire_size``).
        """
        with self._lock:
            try:
                cursor = self._db().execute(
                    "SELECT * FROM records ORDER BY seq LIMIT ?", (max_records,)
                )
                batch: list[SealedRecord] = []
                size = 0
                for row in cursor:
                    size += wire_size(len(row[8]))
                    if batch and size > max_bytes:
                        break
                    batch.append(_row_to_record(self.device_id, row))
                cursor.close()
            except sqlite3.Error as exc:
                raise _storage_error(exc, self.path.parent) from exc
        return batch

    def backlog(self) -> Backlog:
        """Records and bytes still queued (parked ones not included)."""
        status = self.status()
        return Backlog(status.records, status.bytes)

    def acknowledge(self, seqs: Sequence[int], *, high_water: int = 0) -> int:
        """Delete the records the server acknowledged; how many were deleted."""
        deleted = 0
        with self._write() as (conn, meta):
            chosen = json.dumps(sorted(set(seqs)))
            row = conn.execute(
                "SELECT count(*), coalesce(sum(length(sealed)), 0) FROM records"
                " WHERE seq IN (SELECT value FROM json_each(?))",
                (chosen,),
            ).fetchone()
            conn.execute(
                "DELETE FROM records WHERE seq IN (SELECT value FROM json_each(?))", (chosen,)
            )
            deleted = int(row[0])
            meta["records"] -= deleted
            meta["bytes"] -= row[1] + row[0] * RECORD_OVERHEAD
            meta["server_high_water"] = max(meta["server_high_water"], high_water)
            if meta.get("level") != "ok":
                self._stamp(conn, meta)
                self._settle_level(conn, meta, self._level_for(meta["bytes"]))
        return deleted

    def park(self, seqs: Sequence[int], reason: str) -> int:
        """Move records the server refused for good aside, with an alarm; how many moved."""
        reason = reason[:200]
        moved = 0
        if not seqs:
            return 0
        with self._write() as (conn, meta):
            now = self._wall()
            chosen = json.dumps(sorted(set(seqs)))
            conn.execute(
                "INSERT INTO parked SELECT *, ?, ? FROM records"
                " WHERE seq IN (SELECT value FROM json_each(?))",
                (reason, now, chosen),
            )
            moved = conn.execute(
                "DELETE FROM records WHERE seq IN (SELECT value FROM json_each(?))", (chosen,)
            ).rowcount
            meta["records"] -= moved
            meta["parked"] += moved
            if moved:
                self._stamp(conn, meta)
                notice = {"count": moved, "first": min(seqs), "last": max(seqs), "reason": reason}
                self._insert(conn, meta, "outbox.parked", encode_payload(notice))
        return moved

    def unpark(self) -> int:
        """Queue every parked record again (a maintainer's decision); how many."""
        with self._write() as (conn, meta):
            n = conn.execute(
                "INSERT INTO records SELECT seq, prev, key, kind, wall_ns, mono_ns, boot_id,"
                " key_id, sealed FROM parked"
            ).rowcount
            conn.execute("DELETE FROM parked")
            meta["records"] += n
            meta["parked"] = 0
        return n

    def parked_reasons(self) -> list[tuple[str, int]]:
        """Why records were parked, with how many each."""
        with self._lock:
            try:
                rows = self._db().execute(
                    "SELECT reason, count(*) FROM parked GROUP BY reason ORDER BY 2 DESC"
                )
                return [(str(r), int(n)) for r, n in rows]
            except sqlite3.Error as exc:
                raise _storage_error(exc, self.path.parent) from exc

    # -- looking ------------------------------------------------------------------------------

    def status(self) -> OutboxStatus:
        with self._lock:
            try:
                conn = self._db()
                meta = self._read_meta(conn)
                oldest = conn.execute("SELECT wall_ns FROM records ORDER BY seq LIMIT 1").fetchone()
            except sqlite3.Error as exc:
                raise _storage_error(exc, self.path.parent) from exc
        quarantine = tuple(
            sorted(
                p.name
                for p in self.path.parent.glob(self.path.name + ".corrupt-*")
                if not p.name.endswith(("-wal", "-shm"))
            )
        )
        return OutboxStatus(
            device_id=self.device_id,
            records=meta["records"],
            bytes=meta["bytes"],
            max_bytes=self.max_bytes,
            warn_fraction=self.warn_fraction,
            level=str(meta.get("level", "ok")),
            parked=meta["parked"],
            refused=meta["refused"],
            clock_back=meta["clock_back"],
            quarantined=meta["quarantined"],
            quarantine_files=quarantine,
            last_seq=meta["last_seq"],
            server_high_water=meta["server_high_water"],
            oldest_wall_ns=oldest[0] if oldest else None,
        )

    @property
    def boot_id(self) -> str:
        """The boot id this process stamps on its records."""
        return self._boot_id

    @property
    def sequence_floor(self) -> int:
        """The lowest sequence this process hands out (0 until its first append)."""
        return self._floor

    def close(self) -> None:
        with self._lock:
            self._close_conn()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_Row = tuple[Any, ...]
_Recovered = tuple[list[_Row], list[_Row], dict[str, Any]]


class _Reopen(Exception):
    """The database file was replaced under this connection."""


def wire_size(sealed_length: int) -> int:
    """About how many bytes a record with this sealed length takes in a JSON batch."""
    return 4 * ((sealed_length + 2) // 3) + WIRE_OVERHEAD


def _int(value: Any) -> int:
    return value if type(value) is int else 0


def _row_to_record(device_id: str, row: Sequence[Any]) -> SealedRecord:
    seq, prev, key, kind, wall_ns, mono_ns, boot_id, key_id, sealed = row
    header = RecordHeader(device_id, seq, prev, key, kind, wall_ns, mono_ns, boot_id, key_id)
    return SealedRecord(header, bytes(sealed))


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


def _scan(conn: sqlite3.Connection, table: str, width: int) -> dict[int, tuple[Any, ...]]:
    """Every row of ``table`` readable forward and backward around damaged pages."""
    found: dict[int, tuple[Any, ...]] = {}
    for query in _SCANS[table]:
        with contextlib.suppress(sqlite3.DatabaseError):
            for row in conn.execute(query):
                if _valid_row(row, width):
                    found.setdefault(row[0], tuple(row))
    return found


def _read_what_survives(
    path: Path,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], dict[str, Any]]:
    """The readable queued rows, parked rows and meta values of a quarantined file."""
    rows: dict[int, tuple[Any, ...]] = {}
    parked: dict[int, tuple[Any, ...]] = {}
    meta: dict[str, Any] = {}
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error:
        return [], [], {}
    try:
        with contextlib.suppress(sqlite3.DatabaseError):
            conn.execute("PRAGMA cell_size_check=ON")
        rows = _scan(conn, "records", 9)
        parked = _scan(conn, "parked", 11)
        with contextlib.suppress(sqlite3.DatabaseError):
            meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
    finally:
        conn.close()
    return (
        [rows[k] for k in sorted(rows)],
        [parked[k] for k in sorted(parked) if k not in rows],
        meta,
    )
