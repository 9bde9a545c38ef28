"""Who saw which patient's record, and when (MHLW safety guideline v6.0).

Every view of a record - the detail page, an export - appends one entry. The table refuses
UPDATE and DELETE (a trigger on both back-ends), and each entry carries the SHA-256 of the
previous entry's hash and its own fields, so an edit made around the triggers (with the
database file open in another tool) shows as a broken chain on the administrators' page.
Times are the server's UTC clock (keep it synchronised with NTP).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from clinic.storage import Database, Transaction

GENESIS = "0" * 64


def _entry_hash(
    prev_hash: str,
    *,
    at: float,
    username: str,
    action: str,
    verification_id: str | None,
    detail: str,
) -> str:
    canonical = json.dumps(
        [prev_hash, repr(float(at)), username, action, verification_id, detail],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainCheck:
    intact: bool
    entries: int
    first_broken_id: int | None


class AccessLog:
    def __init__(self, db: Database, *, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock

    def record(
        self,
        username: str,
        action: str,
        verification_ids: Sequence[str | None],
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append one entry per record viewed (``[None]`` for an action on no record)."""
        text = json.dumps(detail or {}, ensure_ascii=False, sort_keys=True)
        with self._db.transaction(write=True) as tx:
            self._append(tx, username, action, verification_ids, text)

    def _append(
        self,
        tx: Transaction,
        username: str,
        action: str,
        verification_ids: Sequence[str | None],
        detail: str,
    ) -> None:
        tx.lock("access_log")
        last = tx.one("SELECT entry_hash FROM access_log ORDER BY id DESC LIMIT 1")
        prev = last["entry_hash"] if last else GENESIS
        at = self._clock()
        rows = []
        for verification_id in verification_ids:
            entry = _entry_hash(
                prev,
                at=at,
                username=username,
                action=action,
                verification_id=verification_id,
                detail=detail,
            )
            rows.append((at, username, action, verification_id, detail, prev, entry))
            prev = entry
        tx.executemany(
            "INSERT INTO access_log (at, username, action, verification_id, detail,"
            " prev_hash, entry_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def entries(self, *, limit: int = 200, offset: int = 0) -> list[dict[str, Any]]:
        with self._db.transaction() as tx:
            return tx.all(
                "SELECT id, at, username, action, verification_id, detail FROM access_log"
                " ORDER BY id DESC LIMIT ? OFFSET ?",
                (limit, offset),
            )

    def for_verification(self, verification_id: str) -> list[dict[str, Any]]:
        with self._db.transaction() as tx:
            return tx.all(
                "SELECT id, at, username, action FROM access_log WHERE verification_id = ?"
                " ORDER BY id",
                (verification_id,),
            )

    def check_chain(self) -> ChainCheck:
        prev = GENESIS
        count = 0
        with self._db.transaction() as tx:
            rows = tx.all(
                "SELECT id, at, username, action, verification_id, detail, prev_hash,"
                " entry_hash FROM access_log ORDER BY id"
            )
        for row in rows:
            count += 1
            expected = _entry_hash(
                prev,
                at=row["at"],
                username=row["username"],
                action=row["action"],
                verification_id=row["verification_id"],
                detail=row["detail"],
            )
            if row["prev_hash"] != prev or row["entry_hash"] != expected:
                return ChainCheck(False, count, row["id"])
            prev = row["entry_hash"]
        return ChainCheck(True, count, None)
