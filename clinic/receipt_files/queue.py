"""The queue of result files: every completed check gets exactly one file, however long the
folder is away.

A completed check is entered once (``submit``: the verification id is the key, so a second
entry is ignored) with its file name fixed; ``drain`` writes what is due, marks it written, and
on a failure keeps it with the reason and a later retry time (doubling from
``RETRY_FIRST_S`` up to ``RETRY_MAX_S``). The state lives in the server's database, so a
restart loses nothing; a file written just before a crash is written again under the same
name with the same bytes, never twice. The file's content is built from the verification's
record at write time (the record stays sealed in the database meanwhile).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clinic.receipt_files.document import CompletedCheck, build, file_name
from clinic.receipt_files.folder import FolderWriteError, write_atomically
from clinic.receipt_files.settings import ReceiptSettings
from clinic.storage import Database

if TYPE_CHECKING:
    from clinic.eligibility import EligibilityService, Verification

log = logging.getLogger(__name__)

RETRY_FIRST_S = 5.0
RETRY_MAX_S = 300.0
#: how often the server looks for files due (new ones are written at once)
POLL_S = 1.0


def completes(v: Verification) -> bool:
    """Whether a verification is a completed check: the national system answered it."""
    return v.state == "done" and v.validity_code is not None


@dataclass(frozen=True)
class ReceiptProblem:
    """A file not yet written, as the dashboard shows it (no patient data)."""

    verification_id: str
    file_name: str
    attempts: int
    error_code: str
    reason: str
    since: float
    next_try_at: float


class ReceiptQueue:
    def __init__(
        self,
        db: Database,
        service: EligibilityService,
        settings: ReceiptSettings,
        *,
        clock: Callable[[], float],
    ) -> None:
        self._db = db
        self._service = service
        self.settings = settings
        self._clock = clock
        self._draining = threading.Lock()

    # -- entering completed checks --

    def submit(self, v: Verification) -> bool:
        """Enter a completed check (the eligibility service calls this); True if new.

        Only the database row is written here: the caller may be on the kiosk API's hot
        path. The server's writer task picks it up within ``POLL_S``."""
        if not self.settings.enabled or not completes(v):
            return False
        answered_at = v.updated_at
        check = CompletedCheck(v.id, self._local(answered_at), v.validity_code or 0, [])
        now = self._clock()
        with self._db.transaction(write=True) as tx:
            added = tx.execute(
                "INSERT INTO receipt_files (verification_id, file_name, answered_at, state,"
                " created_at, next_try_at) VALUES (?, ?, ?, 'pending', ?, ?)"
                " ON CONFLICT (verification_id) DO NOTHING",
                (v.id, file_name(check), answered_at, now, now),
            )
        return added > 0

    def _local(self, moment: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(moment, self._service.tz)

    # -- writing --

    def drain(self, limit: int = 100) -> int:
        """Write the files that are due; the number written. One drain at a time per
        process; two processes writing the same file write the same bytes."""
        folder = self.settings.folder
        if folder is None or self.settings.medical_institution_code is None:
            return 0
        with self._draining:
            now = self._clock()
            with self._db.transaction() as tx:
                due = tx.all(
                    "SELECT verification_id, file_name, answered_at, attempts, created_at"
                    " FROM receipt_files WHERE state = 'pending' AND next_try_at <= ?"
                    " ORDER BY created_at LIMIT ?",
                    (now, limit),
                )
            written = 0
            for row in due:
                if self._write_one(row):
                    written += 1
                else:
                    break  # the folder is away: the rest waits for the same retry
            return written

    def _write_one(self, row: dict[str, Any]) -> bool:
        folder = self.settings.folder
        code = self.settings.medical_institution_code
        assert folder is not None
        assert code is not None
        v = self._service.get(row["verification_id"])
        if v is None or v.validity_code is None or (v.records is None and v.validity_code != 4):
            # reduced by the retention purge before its folder came back
            log.warning("result file %s dropped: its record is no longer held", row["file_name"])
            self._fail(row, "gone", "the verification or its record is no longer held")
            return True
        check = CompletedCheck(
            v.id, self._local(row["answered_at"]), v.validity_code, v.records or []
        )
        result = build(check, code, self.settings.encoding)
        assert result.name == row["file_name"]
        try:
            write_atomically(folder, result.name, result.content)
        except FolderWriteError as exc:
            log.warning("result file %s not written: %s", row["file_name"], exc.reason)
            self._fail(row, exc.code, exc.reason)
            return False
        with self._db.transaction(write=True) as tx:
            tx.execute(
                "UPDATE receipt_files SET state = 'written', written_at = ?, attempts = ?,"
                " error_code = NULL, last_error = NULL, substituted = ?"
                " WHERE verification_id = ?",
                (
                    self._clock(),
                    row["attempts"] + 1,
                    json.dumps(result.substituted) if result.substituted else None,
                    row["verification_id"],
                ),
            )
        return True

    def _fail(self, row: dict[str, Any], code: str, reason: str) -> None:
        attempts = row["attempts"] + 1
        wait = min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (attempts - 1))
        state = "gone" if code == "gone" else "pending"
        with self._db.transaction(write=True) as tx:
            tx.execute(
                "UPDATE receipt_files SET state = ?, attempts = ?, error_code = ?,"
                " last_error = ?, next_try_at = ? WHERE verification_id = ?",
                (state, attempts, code, reason, self._clock() + wait, row["verification_id"]),
            )

    def retry_now(self) -> int:
        """Make every failed file due at once (the dashboard's "retry" button)."""
        with self._db.transaction(write=True) as tx:
            return tx.execute(
                "UPDATE receipt_files SET next_try_at = ? WHERE state = 'pending' AND attempts > 0",
                (self._clock(),),
            )

    # -- what the dashboard shows --

    def problems(self, limit: int = 20) -> list[ReceiptProblem]:
        """Files that failed at least once and are not written yet, oldest first."""
        with self._db.transaction() as tx:
            rows = tx.all(
                "SELECT verification_id, file_name, attempts, error_code, last_error,"
                " created_at, next_try_at FROM receipt_files"
                " WHERE state = 'pending' AND attempts > 0 ORDER BY created_at LIMIT ?",
                (limit,),
            )
        return [
            ReceiptProblem(
                r["verification_id"],
                r["file_name"],
                r["attempts"],
                r["error_code"] or "io",
                r["last_error"] or "",
                r["created_at"],
                r["next_try_at"],
            )
            for r in rows
        ]

    def status_of(self, verification_id: str) -> dict[str, Any] | None:
        """One check's file: name, state, and the 外字 substitutions made (detail page)."""
        with self._db.transaction() as tx:
            row = tx.one(
                "SELECT file_name, state, attempts, error_code, last_error, substituted,"
                " written_at FROM receipt_files WHERE verification_id = ?",
                (verification_id,),
            )
        if row is None:
            return None
        return {
            **row,
            "substituted": json.loads(row["substituted"]) if row["substituted"] else {},
        }
