"""The outbox: a durable, bounded, sealed queue of log records in one SQLite file.

Any part of the kiosk logs with ``Outbox.append(kind, payload) -> seq``: the payload (a JSON
mapping) is sealed to the clinic server's public key and the call returns only after the
record is on disk (WAL, ``synchronous=FULL``: the commit's fsync happens before the return).
The uploader (``kiosk uploader``, its own process) reads the same file, sends records in
sequence order and deletes exactly what the server acknowledged. Both processes use short
``BEGIN IMMEDIATE`` transactions and a busy timeout, so either can be killed at any moment
without harming the other: SQLite's WAL makes every transaction all-or-nothing.

The queue leans on its neighbours: :mod:`~kiosk.outbox.sequence` for sequence numbers that
never go back (epochs), :mod:`~kiosk.outbox.clock` for the stamps and a wall clock set back,
:mod:`~kiosk.outbox.salvage` for a damaged file, :mod:`~kiosk.outbox.disk` for what the disk
refuses, :mod:`~kiosk.outbox.schema` and :mod:`~kiosk.outbox.records` for rows and sizes.

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
A file that fails its checks at open is quarantined and its readable rows recovered
(:mod:`~kiosk.outbox.salvage`). Disk full, a read-only file system and I/O errors raise
``StorageUnavailable`` with a ``reason``; every record acknowledged before stays.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from contract.errors import ConfigError
from contract.outbox_record import Backlog, RecordHeader, SealedRecord, check_kind
from contract.sealing import OutboxPublicKey, Sealer
from kiosk.errors import OutboxCorrupt, OutboxError, OutboxFull
from kiosk.outbox import database, salvage
from kiosk.outbox.clock import MonotonicClock, WallClock, read_boot_id, wall_clock_set_back
from kiosk.outbox.database import INSERT_RECORD, read_meta, row_to_record
from kiosk.outbox.disk import fsync_dir, storage_error
from kiosk.outbox.records import RECORD_OVERHEAD, encode_payload, wire_size
from kiosk.outbox.sequence import advance_epoch, epoch_path_for, next_sequence
from kiosk.outbox.status import OutboxStatus

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_WARN_FRACTION = 0.5


class _Reopen(Exception):
    """The database file was replaced under this connection."""


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
        self._epoch_path = epoch_path or epoch_path_for(self.path)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._inode = 0
        self._floor = 0
        self._open()

    # -- opening ------------------------------------------------------------------------------

    def _open(self) -> None:
        directory = self.path.parent
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            lock_fd = os.open(
                self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600
            )
        except OSError as exc:
            raise storage_error(exc, directory) from exc
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            problem = salvage.check_file(self.path, self._busy_timeout_s)
            salvaged: salvage.Salvage | None = None
            if problem is not None:
                salvaged = salvage.quarantine(
                    self.path, problem, wall_ns=self._wall(), busy_timeout_s=self._busy_timeout_s
                )
            try:
                self._connect()
                self._ensure_schema(salvaged)
                self._floor = 0  # a new epoch is taken at the first append
                if salvaged is not None:
                    self._append_notices([("outbox.quarantined", salvaged.notice())])
            except sqlite3.Error as exc:
                self._close_conn()
                raise storage_error(exc, directory) from exc
            except OSError as exc:
                self._close_conn()
                raise storage_error(exc, directory) from exc
        finally:
            os.close(lock_fd)  # closing releases the lock

    def _connect(self) -> None:
        self._conn = database.connect(self.path, self._busy_timeout_s)
        self._inode = os.stat(self.path).st_ino

    def _ensure_schema(self, salvaged: salvage.Salvage | None) -> None:
        conn = self._db()
        conn.execute("BEGIN IMMEDIATE")
        try:
            database.create_tables(conn)
            meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
            if "device_id" not in meta:
                conn.execute("INSERT INTO meta VALUES ('device_id', ?)", (self.device_id,))
            elif meta["device_id"] != self.device_id:
                raise ConfigError(
                    f"{self.path} holds the outbox of device {meta['device_id']!r},"
                    f" not {self.device_id!r}"
                )
            if salvaged is not None:
                salvage.restore(conn, salvaged)
            database.default_meta(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        fsync_dir(self.path.parent)

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

    @contextlib.contextmanager
    def _write(self) -> Iterator[tuple[sqlite3.Connection, dict[str, Any]]]:
        """One short write transaction with the meta values; the changed ones are saved."""
        with self._lock:
            for attempt in (1, 2):
                conn = self._db()
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.Error as exc:
                    raise storage_error(exc, self.path.parent) from exc
                try:
                    try:
                        if os.stat(self.path).st_ino != self._inode:
                            raise _Reopen
                    except FileNotFoundError:
                        raise _Reopen from None
                    meta = read_meta(conn)
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
                    raise storage_error(exc, self.path.parent) from exc
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
            self._floor = advance_epoch(
                self._epoch_path,
                wall_ns=self._wall(),
                last_seq=meta["last_seq"],
                server_high_water=meta["server_high_water"],
            )
        return next_sequence(
            floor=self._floor,
            last_seq=meta["last_seq"],
            server_high_water=meta["server_high_water"],
        )

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
            INSERT_RECORD,
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
        back = wall_clock_set_back(
            last_wall_ns=meta["last_wall_ns"],
            last_mono_ns=meta["last_mono_ns"],
            last_boot=meta.get("last_boot"),
            wall_ns=wall,
            mono_ns=mono,
            boot_id=self._boot_id,
        )
        if back:
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
                    batch.append(row_to_record(self.device_id, row))
                cursor.close()
            except sqlite3.Error as exc:
                raise storage_error(exc, self.path.parent) from exc
        return batch

    def backlog(self) -> Backlog:
        """Records and bytes still queued (parked ones not included)."""
        status = self.status()
        return Backlog(status.records, status.bytes)

    def acknowledge(self, seqs: Sequence[int], *, high_water: int = 0) -> int:
        """Delete the records the server acknowledged; how many were deleted.

        The time is kept as the uploader's last success (``OutboxStatus.last_upload_wall_ns``)
        in the same transaction, so ``kiosk uploader status`` and ``kiosk doctor`` see it
        after a reboot.
        """
        deleted = 0
        with self._write() as (conn, meta):
            meta["upload_ok_wall_ns"] = self._wall()
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

    def note_upload_error(self, code: str) -> None:
        """Keep the uploader's last error (a short code such as ``server.503``, never a
        payload) and its time, for ``kiosk uploader status`` and ``kiosk doctor``."""
        with self._write() as (_conn, meta):
            meta["upload_error"] = code[:120]
            meta["upload_error_wall_ns"] = self._wall()

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
                raise storage_error(exc, self.path.parent) from exc

    # -- looking ------------------------------------------------------------------------------

    def status(self) -> OutboxStatus:
        with self._lock:
            try:
                conn = self._db()
                meta = read_meta(conn)
                oldest = conn.execute("SELECT wall_ns FROM records ORDER BY seq LIMIT 1").fetchone()
            except sqlite3.Error as exc:
                raise storage_error(exc, self.path.parent) from exc
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
            last_upload_wall_ns=_stamp_or_none(meta.get("upload_ok_wall_ns")),
            last_error=str(meta["upload_error"]) if meta.get("upload_error") else None,
            last_error_wall_ns=_stamp_or_none(meta.get("upload_error_wall_ns")),
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


def _stamp_or_none(value: Any) -> int | None:
    return value if type(value) is int and value > 0 else None
