"""The kiosks' outbox arrives here: ``POST /api/v1/outbox/batch`` (extension ``ingest``).

A kiosk's uploader sends batches of sealed records (``kiosk.outbox.record``) over mutual TLS,
each request signed with its device key; the device gate has already said which kiosk is
calling. For every record this endpoint

1. opens the sealed body with the server's outbox key (the header is the HPKE ``info``, so a
   body moved to another device, sequence or kind does not open); a body that does not open
   is kept sealed and counted ``undecryptable``, never thrown away;
2. stores it once per (device, sequence): the same record again (same idempotency key) is a
   ``duplicate``, acknowledged and not stored twice; another record under a sequence already
   held is a ``conflict`` (only a restored SD card with its clock set back can do that),
   kept aside in ``outbox_conflicts`` and acknowledged, so nothing is lost either way;
3. keeps the per-device chain: every record names the sequence before it (``prev``); a record
   whose ``prev`` the server does not hold is a *gap* until that record arrives, and two
   records naming the same ``prev`` are a *fork* (a restored backup); both show on the
   dashboard's kiosk page with the backlog the kiosk reported and the last upload.

The answer lists the sequences the server now holds (``acked``); it is sent only after the
transaction committed and, on SQLite, after the WAL was fsynced, so a kiosk deletes nothing
the server could still lose.

The outbox key pair lives in the data directory (``outbox.key.json``, 0600, and
``outbox.pub.json`` for the kiosks); ``clinic-server init`` makes it, ``clinic-server
outbox-key`` makes it for an older data directory and prints where the public half is.
Without a key the endpoint answers 503 with ``Retry-After``, so kiosks keep their records.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from clinic.context import ClinicContext
from clinic.extensions import Extension
from clinic.kiosk_api import context_of, current_device
from clinic.storage import Database, Migration, Schema, Transaction
from kiosk.outbox.record import Batch, BatchAck, SealedRecord
from kiosk.outbox.sealing import KEMS, Opener, OutboxPrivateKey, UnsealError

log = logging.getLogger(__name__)

PRIVATE_KEY_FILE = "outbox.key.json"
PUBLIC_KEY_FILE = "outbox.pub.json"
#: Records one batch may hold (the device gate also bounds the body to 64 KiB).
MAX_BATCH_RECORDS = 1000
NO_KEY_RETRY_S = 300

_RECORDS = """
CREATE TABLE outbox_records (
    device_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    prev BIGINT NOT NULL,
    idem_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    wall_ns BIGINT NOT NULL,
    mono_ns BIGINT NOT NULL,
    boot_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    payload TEXT,
    sealed {blob},
    arrival BIGINT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (device_id, seq)
);
CREATE INDEX outbox_records_prev ON outbox_records (device_id, prev);
CREATE INDEX outbox_records_arrival ON outbox_records (device_id, arrival);
CREATE TABLE outbox_conflicts (
    device_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    idem_key TEXT NOT NULL,
    prev BIGINT NOT NULL,
    kind TEXT NOT NULL,
    wall_ns BIGINT NOT NULL,
    payload TEXT,
    sealed {blob},
    received_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (device_id, seq, idem_key)
);
CREATE TABLE outbox_devices (
    device_id TEXT PRIMARY KEY,
    records BIGINT NOT NULL DEFAULT 0,
    high_water BIGINT NOT NULL DEFAULT 0,
    duplicates BIGINT NOT NULL DEFAULT 0,
    conflicts BIGINT NOT NULL DEFAULT 0,
    undecryptable BIGINT NOT NULL DEFAULT 0,
    gaps BIGINT NOT NULL DEFAULT 0,
    forks BIGINT NOT NULL DEFAULT 0,
    backlog_records BIGINT,
    backlog_bytes BIGINT,
    last_upload DOUBLE PRECISION,
    last_heartbeat DOUBLE PRECISION,
    heartbeat TEXT
)
"""

INGEST_SCHEMA = Schema(
    "ingest",
    (Migration(1, _RECORDS.format(blob="BLOB"), _RECORDS.format(blob="BYTEA")),),
)


def outbox_key_paths(data_dir: Path) -> tuple[Path, Path]:
    """(private, public) key files of the outbox key pair in a data directory."""
    return data_dir / PRIVATE_KEY_FILE, data_dir / PUBLIC_KEY_FILE


def create_outbox_key(data_dir: Path, kem: str = "mlkem768-x25519") -> tuple[Path, bool]:
    """Make the outbox key pair unless it exists; (public key file, whether it was made)."""
    private, public = outbox_key_paths(data_dir)
    if private.exists():
        key = OutboxPrivateKey.load(private)
        made = False
    else:
        key = OutboxPrivateKey.generate(kem)  # type: ignore[arg-type]
        key.save(private)
        made = True
    public.write_text(key.public_key().to_json(), encoding="utf-8")
    return public, made


@dataclass(frozen=True)
class KioskOutbox:
    """What the dashboard shows of one kiosk's outbox."""

    device_id: str
    records: int
    high_water: int
    duplicates: int
    conflicts: int
    undecryptable: int
    gaps: int
    forks: int
    backlog_records: int | None
    backlog_bytes: int | None
    last_upload: float | None
    last_heartbeat: float | None
    heartbeat: dict[str, Any] | None


def outbox_cell(view: KioskOutbox | None, when: Callable[[float | None], str]) -> dict[str, Any]:
    """What the dashboard's kiosk page shows of one kiosk's log upload."""
    if view is None:
        return {"none": True, "alarm": False}
    problems = []
    if view.conflicts:
        problems.append(f"conflicts {view.conflicts}")
    if view.forks:
        problems.append(f"forks {view.forks}")
    if view.undecryptable:
        problems.append(f"undecryptable {view.undecryptable}")
    alarms = (view.heartbeat or {}).get("alarms")
    if isinstance(alarms, list):
        problems += [str(a)[:40] for a in alarms[:4]]
    return {
        "none": False,
        "backlog": "?" if view.backlog_records is None else view.backlog_records,
        "last_upload": when(view.last_upload),
        "gaps": view.gaps,
        "problems": ", ".join(problems),
        "alarm": bool(view.gaps or problems),
    }


class Ingest:
    """Stores batches; the dashboard's view of each kiosk's outbox."""

    def __init__(self, db: Database, opener: Opener | None, *, clock: Any) -> None:
        self._db = db
        self.opener = opener
        self._clock = clock
        self._wal: Path | None = None
        if db.backend == "sqlite":
            self._wal = Path(db.url_for_display.removeprefix("sqlite://") + "-wal")

    # -- storing --

    def _open(self, record: SealedRecord) -> str | None:
        if self.opener is None:
            return None
        try:
            body = self.opener.open(record.sealed, record.header)
            json.loads(body)
            return body.decode("utf-8")
        except (UnsealError, UnicodeDecodeError, ValueError):
            return None

    def store(self, device_id: str, batch: Batch) -> BatchAck:
        """Store a batch of ``device_id``'s records; the acknowledgement to send back."""
        opened = [(r, self._open(r)) for r in batch.records]  # CPU work outside the lock
        now = self._clock()
        acked: list[int] = []
        conflicts: list[int] = []
        counts = {"new": 0, "duplicates": 0, "undecryptable": 0, "gaps": 0, "forks": 0}
        with self._db.transaction(write=True) as tx:
            tx.execute(
                "INSERT INTO outbox_devices (device_id) VALUES (?) ON CONFLICT (device_id)"
                " DO NOTHING",
                (device_id,),
            )
            # the row lock serialises two uploads of one kiosk on PostgreSQL
            tx.execute(
                "UPDATE outbox_devices SET last_upload = ? WHERE device_id = ?", (now, device_id)
            )
            device = tx.one(
                "SELECT records, high_water FROM outbox_devices WHERE device_id = ?",
                (device_id,),
            )
            assert device is not None
            arrival = int(device["records"])
            high_water = int(device["high_water"])
            previous: int | None = None
            heartbeat: tuple[float, str] | None = None
            for record, payload in opened:
                h = record.header
                held = tx.one(
                    "SELECT idem_key FROM outbox_records WHERE device_id = ? AND seq = ?",
                    (device_id, h.seq),
                )
                acked.append(h.seq)
                if held is not None:
                    if held["idem_key"] == h.key:
                        counts["duplicates"] += 1
                    else:
                        conflicts.append(h.seq)
                        self._keep_conflict(tx, device_id, record, payload, now)
                    previous = h.seq
                    continue
                arrival += 1
                counts["new"] += 1
                counts["gaps"] += self._link(tx, device_id, h.seq, h.prev, previous)
                counts["forks"] += self._forks(tx, device_id, h.seq, h.prev)
                if payload is None:
                    counts["undecryptable"] += 1
                tx.execute(
                    "INSERT INTO outbox_records (device_id, seq, prev, idem_key, kind, wall_ns,"
                    " mono_ns, boot_id, key_id, payload, sealed, arrival, received_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        device_id,
                        h.seq,
                        h.prev,
                        h.key,
                        h.kind,
                        h.wall_ns,
                        h.mono_ns,
                        h.boot_id,
                        h.key_id,
                        payload,
                        record.sealed if payload is None else None,
                        arrival,
                        now,
                    ),
                )
                high_water = max(high_water, h.seq)
                if h.kind == "heartbeat" and payload is not None:
                    heartbeat = (h.wall_ns / 1e9, payload)
                previous = h.seq
            tx.execute(
                "UPDATE outbox_devices SET records = ?, high_water = ?,"
                " duplicates = duplicates + ?, conflicts = conflicts + ?,"
                " undecryptable = undecryptable + ?, gaps = gaps + ?, forks = forks + ?,"
                " backlog_records = ?, backlog_bytes = ? WHERE device_id = ?",
                (
                    arrival,
                    high_water,
                    counts["duplicates"],
                    len(conflicts),
                    counts["undecryptable"],
                    counts["gaps"],
                    counts["forks"],
                    batch.backlog.records,
                    batch.backlog.bytes,
                    device_id,
                ),
            )
            if heartbeat is not None:
                tx.execute(
                    "UPDATE outbox_devices SET last_heartbeat = ?, heartbeat = ?"
                    " WHERE device_id = ?",
                    (heartbeat[0], heartbeat[1], device_id),
                )
        self._make_durable()
        if conflicts:
            log.warning("outbox of %s: %d sequence conflicts kept aside", device_id, len(conflicts))
        return BatchAck(tuple(acked), high_water, counts["duplicates"], tuple(conflicts))

    @staticmethod
    def _link(tx: Transaction, device_id: str, seq: int, prev: int, previous: int | None) -> int:
        """How this record changes the gap count: +1 dangling, -1 per record it completes."""
        change = 0
        if prev not in (0, previous):
            held = tx.one(
                "SELECT 1 AS x FROM outbox_records WHERE device_id = ? AND seq = ?",
                (device_id, prev),
            )
            if held is None:
                change += 1
        waiting = tx.one(
            "SELECT count(*) AS n FROM outbox_records WHERE device_id = ? AND prev = ?",
            (device_id, seq),
        )
        if waiting is not None:
            change -= int(waiting["n"])
        return change

    @staticmethod
    def _forks(tx: Transaction, device_id: str, seq: int, prev: int) -> int:
        if prev == 0:
            return 0
        row = tx.one(
            "SELECT count(*) AS n FROM outbox_records WHERE device_id = ? AND prev = ?"
            " AND seq <> ?",
            (device_id, prev, seq),
        )
        return 1 if row is not None and int(row["n"]) > 0 else 0

    @staticmethod
    def _keep_conflict(
        tx: Transaction, device_id: str, record: SealedRecord, payload: str | None, now: float
    ) -> None:
        h = record.header
        tx.execute(
            "INSERT INTO outbox_conflicts (device_id, seq, idem_key, prev, kind, wall_ns,"
            " payload, sealed, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (device_id, seq, idem_key) DO NOTHING",
            (device_id, h.seq, h.key, h.prev, h.kind, h.wall_ns, payload, record.sealed, now),
        )

    def _make_durable(self) -> None:
        """On SQLite (synchronous=NORMAL) fsync the WAL before acknowledging anything."""
        if self._wal is None:
            return  # PostgreSQL's COMMIT is durable (synchronous_commit=on)
        with contextlib.suppress(FileNotFoundError):
            fd = os.open(self._wal, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    # -- looking --

    def kiosks(self) -> dict[str, KioskOutbox]:
        with self._db.transaction() as tx:
            rows = tx.all("SELECT * FROM outbox_devices ORDER BY device_id")
        result = {}
        for row in rows:
            heartbeat = None
            if row["heartbeat"]:
                with contextlib.suppress(ValueError):
                    heartbeat = json.loads(row["heartbeat"])
            result[row["device_id"]] = KioskOutbox(
                device_id=row["device_id"],
                records=int(row["records"]),
                high_water=int(row["high_water"]),
                duplicates=int(row["duplicates"]),
                conflicts=int(row["conflicts"]),
                undecryptable=int(row["undecryptable"]),
                gaps=int(row["gaps"]),
                forks=int(row["forks"]),
                backlog_records=row["backlog_records"],
                backlog_bytes=row["backlog_bytes"],
                last_upload=row["last_upload"],
                last_heartbeat=row["last_heartbeat"],
                heartbeat=heartbeat if isinstance(heartbeat, dict) else None,
            )
        return result

    def records_of(self, device_id: str) -> list[dict[str, Any]]:
        """A kiosk's records in arrival order (for maintenance and tests)."""
        with self._db.transaction() as tx:
            return tx.all(
                "SELECT seq, prev, idem_key, kind, wall_ns, payload, arrival FROM outbox_records"
                " WHERE device_id = ? ORDER BY arrival",
                (device_id,),
            )


# --- the route ---------------------------------------------------------------------------------

router = APIRouter()


def _error(status: int, detail: str, retry_after: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


@router.post("/outbox/batch")
async def ingest_batch(request: Request) -> JSONResponse:
    """Store a batch of a kiosk's sealed log records; the sequences now held."""
    context = context_of(request)
    ingest = context.extras.get("ingest")
    if not isinstance(ingest, Ingest) or ingest.opener is None:
        return _error(503, "the server has no outbox key yet", NO_KEY_RETRY_S)
    device_id = current_device(request)
    try:
        batch = Batch.from_json(await request.body(), max_records=MAX_BATCH_RECORDS)
    except ValueError as exc:
        return _error(422, str(exc))
    if batch.device_id != device_id:
        return _error(422, f"the batch names {batch.device_id!r}, the request {device_id!r}")
    ack = await context.run(ingest.store, device_id, batch)
    return JSONResponse(ack.to_json())


def _start(context: ClinicContext) -> None:
    opener: Opener | None = None
    config = context.extras.get("config")
    data_dir = getattr(config, "data_dir", None)
    if data_dir is not None:
        private, _ = outbox_key_paths(Path(data_dir))
        if private.exists():
            opener = OutboxPrivateKey.load(private).opener()
    if opener is None:
        log.warning("no outbox key: kiosk logs are refused (run clinic-server outbox-key)")
    context.extras["ingest"] = Ingest(context.db, opener, clock=context.clock)


EXTENSION = Extension(name="ingest", schema=INGEST_SCHEMA, kiosk_router=router, on_start=_start)


# --- clinic-server outbox-key --------------------------------------------------------------------


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``clinic-server outbox-key``: make the outbox key pair if missing; where kiosks get it."""
    command = subparsers.add_parser(
        "outbox-key", help="the key kiosks seal their logs to (made once, kept)"
    )
    command.add_argument("--kem", choices=KEMS, default=KEMS[0])
    command.set_defaults(func=cmd_outbox_key)


def cmd_outbox_key(args: argparse.Namespace) -> int:
    public, made = create_outbox_key(Path(args.data_dir), args.kem)
    print(f"{'made' if made else 'kept'} the outbox key; give kiosks {public}")
    return 0
