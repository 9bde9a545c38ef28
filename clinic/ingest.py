"""The kiosks' outbox arrives here: ``POST /api/v1/outbox/batch`` (extension ``ingest``).

A kiosk's uploader sends batches of sealed records (``contract.outbox_record``) over mutual TLS,
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

Each kiosk has a storage quota (``OutboxQuota``: undecryptable records held, records stored
in any 24 hours; ``outbox_quota_undecryptable`` and ``outbox_quota_per_day`` in clinic.toml):
a batch that would pass it is refused whole with 507 and nothing of it acknowledged (the
kiosk sets the records aside and raises its own alarm), counted and shown on the dashboard's
kiosk page, and logged.

The answer lists the sequences the server now holds (``acked``); it is sent only after the
transaction committed and, on SQLite, after the WAL was fsynced, so a kiosk deletes nothing
the server could still lose.

The outbox key pair lives in the data directory (``outbox.key.json``, 0600, and
``outbox.pub.json`` for the kiosks); ``clinic-server init`` makes it, ``clinic-server
outbox-key`` makes it for an older data directory and prints where the public half is.
Without a key the endpoint answers 503 with ``Retry-After``, so kiosks keep their records.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from clinic.at_rest import PREFIX, RecordCipher, aad, open_optional, seal_optional
from clinic.context import ClinicContext
from clinic.errors import ClinicError
from clinic.extensions import Extension
from clinic.http_errors import json_error
from clinic.kiosk_api import context_of, current_device
from clinic.outbox_key import outbox_key_paths
from clinic.storage import Database, Migration, Schema, Transaction
from contract.api import OUTBOX_BATCH
from contract.errors import UnsealError
from contract.outbox_record import Batch, BatchAck, SealedRecord
from contract.sealing import Opener, OutboxPrivateKey

log = logging.getLogger(__name__)

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

_QUOTA = """
ALTER TABLE outbox_devices ADD COLUMN refused BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox_devices ADD COLUMN refused_reason TEXT;
CREATE INDEX outbox_records_received ON outbox_records (device_id, received_at)
"""

INGEST_SCHEMA = Schema(
    "ingest",
    (
        Migration(1, _RECORDS.format(blob="BLOB"), _RECORDS.format(blob="BYTEA")),
        Migration.portable(2, _QUOTA),
    ),
)

DAY_S = 86400.0


@dataclass(frozen=True)
class OutboxQuota:
    """What one kiosk may have the server store (``clinic.toml``: ``outbox_quota_*``)."""

    #: undecryptable records held for one kiosk (kept sealed, never thrown away)
    undecryptable: int = 1000
    #: records one kiosk may have stored in any 24 hours
    per_day: int = 50_000


class QuotaExceeded(ClinicError):
    """A batch would take a kiosk past its storage quota; nothing of it was stored."""

    code = "clinic.outbox_quota"


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
    refused: int
    backlog_records: int | None
    backlog_bytes: int | None
    last_upload: float | None
    last_heartbeat: float | None
    heartbeat: dict[str, Any] | None


class Ingest:
    """Stores batches; the dashboard's view of each kiosk's outbox."""

    def __init__(
        self,
        db: Database,
        opener: Opener | None,
        *,
        clock: Any,
        cipher: RecordCipher | None = None,
        quota: OutboxQuota | None = None,
    ) -> None:
        """``cipher`` seals the opened payloads in the database (``clinic.at_rest``)."""
        self._db = db
        self.opener = opener
        self._clock = clock
        self._cipher = cipher
        self.quota = quota or OutboxQuota()
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
        """Store a batch of ``device_id``'s records; the acknowledgement to send back.

        ``QuotaExceeded`` (nothing stored) when the batch would take the kiosk past its quota.
        """
        try:
            return self._store(device_id, batch)
        except QuotaExceeded as refused:
            with self._db.transaction(write=True) as tx:
                tx.execute(
                    "INSERT INTO outbox_devices (device_id) VALUES (?) ON CONFLICT (device_id)"
                    " DO NOTHING",
                    (device_id,),
                )
                tx.execute(
                    "UPDATE outbox_devices SET refused = refused + 1, refused_reason = ?"
                    " WHERE device_id = ?",
                    (str(refused), device_id),
                )
            log.warning("outbox of %s: batch refused, %s", device_id, refused)
            raise

    def _over_quota(
        self, tx: Transaction, device_id: str, new: list[str | None], now: float
    ) -> str | None:
        """Why storing the ``new`` payloads (None: undecryptable) passes the quota, or None."""
        quota = self.quota
        undecryptable = sum(1 for payload in new if payload is None)
        if undecryptable:
            held = tx.one(
                "SELECT undecryptable FROM outbox_devices WHERE device_id = ?", (device_id,)
            )
            already = int(held["undecryptable"]) if held is not None else 0
            if already + undecryptable > quota.undecryptable:
                return (
                    f"the kiosk's quota of {quota.undecryptable} undecryptable records is used "
                    f"up ({already} held, {undecryptable} more in this batch): is it sealing to "
                    "another server's key? Staff must look at the kiosk"
                )
        if new:
            day = tx.one(
                "SELECT count(*) AS n FROM outbox_records WHERE device_id = ? AND received_at > ?",
                (device_id, now - DAY_S),
            )
            stored = int(day["n"]) if day is not None else 0
            if stored + len(new) > quota.per_day:
                return (
                    f"the kiosk's quota of {quota.per_day} records a day is used up ({stored} "
                    f"stored in the last 24 hours, {len(new)} more in this batch)"
                )
        return None

    def _store(self, device_id: str, batch: Batch) -> BatchAck:
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
            holding = {
                record.seq: tx.one(
                    "SELECT idem_key FROM outbox_records WHERE device_id = ? AND seq = ?",
                    (device_id, record.seq),
                )
                for record, _ in opened
            }
            refusal = self._over_quota(
                tx, device_id, [p for r, p in opened if holding[r.seq] is None], now
            )
            if refusal is not None:
                raise QuotaExceeded(refusal)  # rolls the whole batch back
            previous: int | None = None
            heartbeat: tuple[float, str] | None = None
            for record, payload in opened:
                h = record.header
                held = holding[h.seq]
                acked.append(h.seq)
                if held is not None:
                    if held["idem_key"] == h.key:
                        counts["duplicates"] += 1
                    else:
                        conflicts.append(h.seq)
                        self._keep_conflict(
                            tx,
                            device_id,
                            record,
                            seal_optional(
                                self._cipher,
                                payload,
                                aad("outbox_conflicts", "payload", device_id, h.seq, h.key),
                            ),
                            now,
                        )
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
                        seal_optional(
                            self._cipher,
                            payload,
                            aad("outbox_records", "payload", device_id, h.seq),
                        ),
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
                    (
                        heartbeat[0],
                        seal_optional(
                            self._cipher,
                            heartbeat[1],
                            aad("outbox_devices", "heartbeat", device_id),
                        ),
                        device_id,
                    ),
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
                    heartbeat = json.loads(
                        open_optional(
                            self._cipher,
                            row["heartbeat"],
                            aad("outbox_devices", "heartbeat", row["device_id"]),
                        )
                        or ""
                    )
            result[row["device_id"]] = KioskOutbox(
                device_id=row["device_id"],
                records=int(row["records"]),
                high_water=int(row["high_water"]),
                duplicates=int(row["duplicates"]),
                conflicts=int(row["conflicts"]),
                undecryptable=int(row["undecryptable"]),
                gaps=int(row["gaps"]),
                forks=int(row["forks"]),
                refused=int(row["refused"]),
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
            rows = tx.all(
                "SELECT seq, prev, idem_key, kind, wall_ns, payload, arrival FROM outbox_records"
                " WHERE device_id = ? ORDER BY arrival",
                (device_id,),
            )
        for row in rows:
            where = aad("outbox_records", "payload", device_id, row["seq"])
            row["payload"] = open_optional(self._cipher, row["payload"], where)
        return rows

    def seal_existing(self) -> int:
        """Seal the payloads written before the record key existed (run at start)."""
        cipher = self._cipher
        if cipher is None:
            return 0
        sealed = 0
        like = PREFIX + "%"
        with self._db.transaction(write=True) as tx:
            for row in tx.all(
                "SELECT device_id, seq, payload FROM outbox_records"
                " WHERE payload IS NOT NULL AND payload NOT LIKE ?",
                (like,),
            ):
                where = aad("outbox_records", "payload", row["device_id"], row["seq"])
                tx.execute(
                    "UPDATE outbox_records SET payload = ? WHERE device_id = ? AND seq = ?",
                    (cipher.seal(row["payload"], where), row["device_id"], row["seq"]),
                )
                sealed += 1
            for row in tx.all(
                "SELECT device_id, seq, idem_key, payload FROM outbox_conflicts"
                " WHERE payload IS NOT NULL AND payload NOT LIKE ?",
                (like,),
            ):
                key = (row["device_id"], row["seq"], row["idem_key"])
                tx.execute(
                    "UPDATE outbox_conflicts SET payload = ?"
                    " WHERE device_id = ? AND seq = ? AND idem_key = ?",
                    (cipher.seal(row["payload"], aad("outbox_conflicts", "payload", *key)), *key),
                )
                sealed += 1
            for row in tx.all(
                "SELECT device_id, heartbeat FROM outbox_devices"
                " WHERE heartbeat IS NOT NULL AND heartbeat NOT LIKE ?",
                (like,),
            ):
                where = aad("outbox_devices", "heartbeat", row["device_id"])
                tx.execute(
                    "UPDATE outbox_devices SET heartbeat = ? WHERE device_id = ?",
                    (cipher.seal(row["heartbeat"], where), row["device_id"]),
                )
                sealed += 1
        return sealed


# --- the route ---------------------------------------------------------------------------------

router = APIRouter()


@router.post(OUTBOX_BATCH)
async def ingest_batch(request: Request) -> Response:
    """Store a batch of a kiosk's sealed log records; the sequences now held.

    Errors of the storage rise to ``clinic.http_errors`` (a busy database: 503 with
    ``Retry-After``, so the kiosk keeps its records and sends them again).
    """
    context = context_of(request)
    ingest = context.extras.get("ingest")
    if not isinstance(ingest, Ingest) or ingest.opener is None:
        return json_error(
            503, "the server has no outbox key yet", {"Retry-After": str(NO_KEY_RETRY_S)}
        )
    device_id = current_device(request)
    try:
        batch = Batch.from_json(await request.body(), max_records=MAX_BATCH_RECORDS)
    except ValueError as exc:  # the request's body, not an error of the server
        return json_error(422, str(exc))
    if batch.device_id != device_id:
        return json_error(422, f"the batch names {batch.device_id!r}, the request {device_id!r}")
    try:
        ack = await context.run(ingest.store, device_id, batch)
    except QuotaExceeded as exc:
        # 507: nothing acknowledged, so the kiosk keeps its records (it sets them aside)
        return json_error(507, str(exc))
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
    cipher = context.extras.get("record_cipher")
    quota = OutboxQuota(
        undecryptable=getattr(config, "outbox_quota_undecryptable", OutboxQuota.undecryptable),
        per_day=getattr(config, "outbox_quota_per_day", OutboxQuota.per_day),
    )
    ingest = Ingest(
        context.db,
        opener,
        clock=context.clock,
        cipher=cipher if isinstance(cipher, RecordCipher) else None,
        quota=quota,
    )
    ingest.seal_existing()
    context.extras["ingest"] = ingest


EXTENSION = Extension(name="ingest", schema=INGEST_SCHEMA, kiosk_router=router, on_start=_start)
