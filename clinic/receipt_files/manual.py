"""The outage path: a visit confirmed by hand while the national system was down, and the
re-check once it is back.

When the national system cannot answer (``national.unavailable``), the patient must not pay
in full because of it: staff confirm eligibility another way and write down what they saw.
``ManualConfirmations.record`` keeps how it was confirmed and what staff wrote (sealed with
the record key, like the records); ``recheck_waiting`` asks the national system again for
every such visit and records its answer on the verification (which then gets its result file
like any completed check). Both show in the day's list and in the exports.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clinic.at_rest import RecordCipher, aad, open_optional, seal_optional
from clinic.errors import ClinicError, NotFound
from clinic.storage import Database

if TYPE_CHECKING:
    from clinic.eligibility import EligibilityService

#: how staff confirmed eligibility without the national system (DOMAIN: section 4)
METHODS: dict[str, tuple[str, str]] = {
    "certificate": ("資格確認書", "qualification certificate (資格確認書)"),
    "notice_with_card": (
        "資格情報のお知らせ＋マイナンバーカード",
        "eligibility notice with the My Number card",
    ),
    "mynaportal": ("マイナポータルの資格情報画面", "the マイナポータル eligibility screen"),
    "declaration": ("被保険者資格申立書", "self-declaration form (被保険者資格申立書)"),
}
DETAIL_FIELDS = ("name", "sex", "birthdate", "address", "insurer")
#: verifications whose check can be made again once the national system answers
RECHECKABLE = "national.unavailable"
_MAX_FIELD = 200
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class ManualConfirmationError(ClinicError, ValueError):
    """A manual confirmation that cannot be recorded as given (the message says why)."""


@dataclass(frozen=True)
class ManualConfirmation:
    verification_id: str
    method: str
    details: dict[str, str]
    recorded_by: str
    recorded_at: float
    #: waiting (for the national system), done (re-checked), or not_needed
    recheck_state: str
    rechecked_at: float | None
    recheck_reason: str | None


def check_details(method: str, details: dict[str, str]) -> dict[str, str]:
    """The form's values, checked: a known method, the name, sex and birth date given."""
    if method not in METHODS:
        raise ManualConfirmationError(f"unknown confirmation method {method!r}")
    clean = {k: (details.get(k) or "").strip() for k in DETAIL_FIELDS}
    for key, value in clean.items():
        if len(value) > _MAX_FIELD or not value.isprintable():
            raise ManualConfirmationError(f"{key}: at most {_MAX_FIELD} printable characters")
    missing = [k for k in ("name", "sex", "birthdate") if not clean[k]]
    if missing:
        raise ManualConfirmationError(f"missing: {', '.join(missing)}")
    if clean["sex"] not in ("1", "2", "3"):
        raise ManualConfirmationError("sex is 1 (男), 2 (女) or 3 (未設定)")
    if not _DATE.match(clean["birthdate"]):
        raise ManualConfirmationError("the birth date is YYYY-MM-DD")
    return clean


class ManualConfirmations:
    def __init__(
        self,
        db: Database,
        service: EligibilityService,
        *,
        clock: Callable[[], float],
        cipher: RecordCipher | None = None,
    ) -> None:
        self._db = db
        self._service = service
        self._clock = clock
        self._cipher = cipher

    def record(
        self, verification_id: str, method: str, details: dict[str, str], *, by: str
    ) -> ManualConfirmation:
        """Record (or correct) the manual confirmation of one visit."""
        clean = check_details(method, details)
        v = self._service.get(verification_id)
        if v is None:
            raise NotFound(verification_id)
        state = "waiting" if v.reason_code == RECHECKABLE else "not_needed"
        now = self._clock()
        sealed = seal_optional(
            self._cipher,
            json.dumps(clean, ensure_ascii=False),
            aad("manual_confirmations", "details", verification_id),
        )
        with self._db.transaction(write=True) as tx:
            tx.execute(
                "INSERT INTO manual_confirmations (verification_id, method, details,"
                " recorded_by, recorded_at, day, recheck_state) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (verification_id) DO UPDATE SET method = excluded.method,"
                " details = excluded.details, recorded_by = excluded.recorded_by,"
                " recorded_at = excluded.recorded_at",
                (verification_id, method, sealed, by, now, v.day, state),
            )
        if v.needs_staff and v.handled_at is None:
            self._service.mark_handled(verification_id, by=by)
        found = self.get(verification_id)
        assert found is not None
        return found

    def _load(self, row: dict[str, Any]) -> ManualConfirmation:
        plain = open_optional(  # '' = reduced by the retention purge (clinic.at_rest)
            self._cipher,
            row["details"] or None,
            aad("manual_confirmations", "details", row["verification_id"]),
        )
        return ManualConfirmation(
            row["verification_id"],
            row["method"],
            json.loads(plain or "{}"),
            row["recorded_by"],
            row["recorded_at"],
            row["recheck_state"],
            row["rechecked_at"],
            row["recheck_reason"],
        )

    def get(self, verification_id: str) -> ManualConfirmation | None:
        with self._db.transaction() as tx:
            row = tx.one(
                "SELECT * FROM manual_confirmations WHERE verification_id = ?",
                (verification_id,),
            )
        return self._load(row) if row is not None else None

    def of_day(self, day: str) -> dict[str, ManualConfirmation]:
        with self._db.transaction() as tx:
            rows = tx.all("SELECT * FROM manual_confirmations WHERE day = ?", (day,))
        return {r["verification_id"]: self._load(r) for r in rows}

    def waiting(self) -> list[str]:
        with self._db.transaction() as tx:
            rows = tx.all(
                "SELECT verification_id FROM manual_confirmations"
                " WHERE recheck_state = 'waiting' ORDER BY recorded_at"
            )
        return [r["verification_id"] for r in rows]

    def recheck_waiting(self, *, by: str) -> tuple[int, int]:
        """Ask the national system again for every visit confirmed by hand during an
        outage; (re-checked, still unanswered)."""
        done = still = 0
        for verification_id in self.waiting():
            v = self._service.recheck(verification_id, by=by)
            if v.reason_code == RECHECKABLE:
                still += 1
                continue
            with self._db.transaction(write=True) as tx:
                tx.execute(
                    "UPDATE manual_confirmations SET recheck_state = 'done', rechecked_at = ?,"
                    " recheck_reason = ? WHERE verification_id = ?",
                    (self._clock(), v.reason_code, verification_id),
                )
            done += 1
        return done, still
