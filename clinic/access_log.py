"""Who saw which patient's record, and when (MHLW safety guideline v6.0).

Every view of a record - the detail page, an export - appends one entry. The table refuses
UPDATE and DELETE (a trigger on both back-ends). Around the triggers (the database opened in
another tool) two more things show a change:

- **A keyed chain.** Each entry carries an HMAC-SHA-256, under a key kept outside the
  database (``access-log.key`` in the data directory, 0600), of the previous entry's MAC and
  its own fields. Editing an entry breaks the chain, and recomputing it needs the key.
- **An anchor outside the database.** After each append the new head (entry id and MAC) is
  appended, MACed too, to ``access-log.anchor`` in the data directory (0600, append-only) and
  written to the server's log (the journal). Deleting the newest entries, or all of them,
  leaves anchored entries missing.

``clinic-server access-log verify`` (and the administrators' page) checks both. The key and
the anchor's first line are made by ``clinic-server init``, or by the first start of a server
whose data directory has none: entries written before that were chained with plain SHA-256;
they stay so, and the first line anchors their head. Several servers sharing one PostgreSQL
database share the key (copy the file); each anchors what it writes in its own data directory.
Times are the server's UTC clock (keep it synchronised with NTP).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clinic.storage import Database, Transaction
from contract.errors import ConfigError

log = logging.getLogger(__name__)

GENESIS = "0" * 64
KEY_BYTES = 32


def _canonical(
    prev_hash: str,
    *,
    at: float,
    username: str,
    action: str,
    verification_id: str | None,
    detail: str,
) -> bytes:
    return json.dumps(
        [prev_hash, repr(float(at)), username, action, verification_id, detail],
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")


def _legacy_hash(prev_hash: str, **fields: Any) -> str:
    """The unkeyed chain of entries written before the key existed."""
    return hashlib.sha256(_canonical(prev_hash, **fields)).hexdigest()


def _keyed_hash(key: bytes, prev_hash: str, **fields: Any) -> str:
    return hmac.new(key, _canonical(prev_hash, **fields), hashlib.sha256).hexdigest()


def _line_mac(key: bytes, record: dict[str, Any]) -> str:
    body = json.dumps(record, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hmac.new(key, b"anchor:" + body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ChainCheck:
    intact: bool
    entries: int
    #: the first entry found changed or missing (None when intact, or nothing more precise)
    first_broken_id: int | None
    #: what was found, in a sentence (None when intact)
    problem: str | None = None
    #: entries after the newest anchor (appended after the anchor's last write: a crash)
    unanchored: int = 0


class Seal:
    """The key and the anchor file of one data directory."""

    def __init__(self, key: bytes, anchor_path: Path) -> None:
        if len(key) < 16:
            raise ConfigError("the access-log key is too short")
        self.key = key
        self.anchor_path = anchor_path
        self._lock = threading.Lock()

    # -- files --

    @classmethod
    def load(cls, key_path: Path, anchor_path: Path) -> Seal:
        """The existing key (a ``ConfigError`` when there is none)."""
        try:
            text = key_path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            raise ConfigError(
                f"no access-log key at {key_path} (the server makes it when it first starts)"
            ) from None
        except OSError as exc:
            raise ConfigError(f"cannot read the access-log key: {exc}") from exc
        try:
            key = bytes.fromhex(text)
        except ValueError:
            raise ConfigError(f"{key_path} is not a hexadecimal key") from None
        return cls(key, anchor_path)

    @classmethod
    def open(cls, key_path: Path, anchor_path: Path, db: Database) -> Seal:
        """The key, made (with the anchor's first line) when the data directory has none."""
        if key_path.exists():
            seal = cls.load(key_path, anchor_path)
            if not anchor_path.exists():
                log.error(
                    "the access-log anchor %s is missing: `access-log verify` will say so",
                    anchor_path,
                )
            return seal
        key = secrets.token_bytes(KEY_BYTES)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(key.hex() + "\n")
        seal = cls(key, anchor_path)
        with db.transaction() as tx:
            head = tx.one("SELECT id, entry_hash FROM access_log ORDER BY id DESC LIMIT 1")
        keyed_after = int(head["id"]) if head else 0
        head_hash = str(head["entry_hash"]) if head else GENESIS
        seal._append({"kind": "start", "keyed_after": keyed_after, "hash": head_hash})
        log.info(
            "access log: new key; entries up to %d were chained without one (head %s)",
            keyed_after,
            head_hash,
        )
        return seal

    def anchor(self, entry_id: int, entry_hash: str, at: float) -> None:
        """Record a new head outside the database: the anchor file and the server's log."""
        self._append({"kind": "head", "id": entry_id, "hash": entry_hash, "at": at})
        log.info("access log head: entry %d %s", entry_id, entry_hash)

    def _append(self, record: dict[str, Any]) -> None:
        line = json.dumps({**record, "mac": _line_mac(self.key, record)}, sort_keys=True)
        with self._lock:
            fd = os.open(self.anchor_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, (line + "\n").encode("ascii"))
            finally:
                os.close(fd)

    def read_anchors(self) -> tuple[list[dict[str, Any]], str | None]:
        """The anchor file's authentic lines, or a problem with the file."""
        try:
            text = self.anchor_path.read_text(encoding="ascii")
        except FileNotFoundError:
            return [], f"the anchor file {self.anchor_path} is missing"
        except (OSError, UnicodeDecodeError) as exc:
            return [], f"cannot read the anchor file: {exc}"
        records: list[dict[str, Any]] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                mac = record.pop("mac")
            except (ValueError, KeyError, AttributeError):
                return [], f"line {number} of the anchor file is not an anchor"
            if not isinstance(mac, str) or not hmac.compare_digest(
                mac, _line_mac(self.key, record)
            ):
                return [], f"line {number} of the anchor file was not written with the key"
            records.append(record)
        if not records or records[0].get("kind") != "start":
            return [], "the anchor file lost its first line (it was emptied or replaced)"
        return records, None


class AccessLog:
    def __init__(self, db: Database, *, clock: Callable[[], float], seal: Seal) -> None:
        self._db = db
        self._clock = clock
        self._seal = seal

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
            head = self._append(tx, username, action, verification_ids, text)
        if head is None:
            return
        try:
            self._seal.anchor(int(head["id"]), str(head["entry_hash"]), self._clock())
        except OSError:
            # the entry is kept; `verify` will count it as not anchored
            log.exception("could not anchor access log entry %s", head["id"])

    def _append(
        self,
        tx: Transaction,
        username: str,
        action: str,
        verification_ids: Sequence[str | None],
        detail: str,
    ) -> dict[str, Any] | None:
        tx.lock("access_log")
        last = tx.one("SELECT entry_hash FROM access_log ORDER BY id DESC LIMIT 1")
        prev = last["entry_hash"] if last else GENESIS
        at = self._clock()
        rows = []
        for verification_id in verification_ids:
            entry = _keyed_hash(
                self._seal.key,
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
        return tx.one("SELECT id, entry_hash FROM access_log ORDER BY id DESC LIMIT 1")

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
        """The chain checked with the key, and the anchors against the entries."""
        with self._db.transaction() as tx:
            rows = tx.all(
                "SELECT id, at, username, action, verification_id, detail, prev_hash,"
                " entry_hash FROM access_log ORDER BY id"
            )
        anchors, anchor_problem = self._seal.read_anchors()
        keyed_after = int(anchors[0].get("keyed_after", 0)) if anchors else 0
        prev = GENESIS
        hashes: dict[int, str] = {}
        for row in rows:
            fields = {
                "at": row["at"],
                "username": row["username"],
                "action": row["action"],
                "verification_id": row["verification_id"],
                "detail": row["detail"],
            }
            if row["id"] <= keyed_after:
                expected = _legacy_hash(prev, **fields)
            else:
                expected = _keyed_hash(self._seal.key, prev, **fields)
            if row["prev_hash"] != prev or not hmac.compare_digest(row["entry_hash"], expected):
                return ChainCheck(
                    False,
                    len(rows),
                    row["id"],
                    f"entry {row['id']} does not match the keyed hash chain: it, or one"
                    " before it, was edited (or the chain recomputed without the key)",
                )
            hashes[row["id"]] = row["entry_hash"]
            prev = row["entry_hash"]
        if anchor_problem is not None:
            return ChainCheck(False, len(rows), None, anchor_problem)
        return self._check_anchors(rows, hashes, anchors)

    @staticmethod
    def _check_anchors(
        rows: list[dict[str, Any]], hashes: dict[int, str], anchors: list[dict[str, Any]]
    ) -> ChainCheck:
        newest = rows[-1]["id"] if rows else 0
        anchored = [
            (int(a["keyed_after"]), str(a["hash"]))
            for a in anchors[:1]
            if int(a.get("keyed_after", 0)) > 0
        ]
        anchored += [(int(a["id"]), str(a["hash"])) for a in anchors[1:] if a["kind"] == "head"]
        highest = 0
        for entry_id, entry_hash in anchored:
            highest = max(highest, entry_id)
            found = hashes.get(entry_id)
            if found is None:
                continue
            if not hmac.compare_digest(found, entry_hash):
                return ChainCheck(
                    False,
                    len(rows),
                    entry_id,
                    f"entry {entry_id} differs from the one anchored outside the database:"
                    " it, or an entry before it, was changed",
                )
        if highest > newest:
            what = "the log is empty" if not rows else f"the newest entry is {newest}"
            return ChainCheck(
                False,
                len(rows),
                newest + 1 if rows else None,
                f"{what} but entry {highest} was anchored outside the database:"
                " entries were deleted from the end of the log",
            )
        missing = sorted(i for i, _ in anchored if i not in hashes)
        if missing:
            return ChainCheck(
                False,
                len(rows),
                missing[0],
                f"anchored entry {missing[0]} is missing from the log",
            )
        unanchored = sum(1 for row in rows if row["id"] > highest) if anchored else len(rows)
        return ChainCheck(True, len(rows), None, None, unanchored)
