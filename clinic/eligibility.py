"""The eligibility check itself: challenges, verifications and staff decisions.

Plain synchronous code with its clock, database, trust store and connector passed in; the
web layer calls it from worker threads. The checks of a verification run in a fixed order and
stop at the first failure, each with its own reason code (``clinic.outcomes``):

1. the nonce was issued to this kiosk, is unused and has not expired;
2. the certificate parses, and in PIN mode the card's signature over
   ``contract.challenge.signed_message(nonce, device, mode)`` verifies with it;
3. it chains to a configured JPKI user-authentication CA;
4. it is not on that CA's current CRL;
5. it is within its validity, or within the three-month grace (eligibility only);
6. then the national system is asked (at once in PIN mode; after staff confirm in visual mode,
   so no record is fetched before someone has checked the patient's face against the card).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

from cryptography import x509

from clinic.at_rest import PREFIX, RecordCipher, aad, open_optional, seal_optional
from clinic.errors import Conflict, NationalUnavailable, NotFound
from clinic.events import EventHub
from clinic.jpki import JpkiTrust, validity_at, verify_card_signature
from clinic.national.interface import NationalConnector
from clinic.outcomes import VALIDITY_REASONS, outcome
from clinic.storage import Database, Row
from contract.challenge import Mode, signed_message

log = logging.getLogger(__name__)

NONCE_BYTES = 32
Decision = Literal["confirmed", "rejected"]


@dataclass(frozen=True)
class Challenge:
    nonce: bytes
    issued_at: float
    expires_at: float


@dataclass(frozen=True)
class Verification:
    id: str
    device_id: str
    mode: str
    #: done, awaiting_staff, or deciding (staff decided, the national system is being asked)
    state: str
    reason_code: str
    validity_code: int | None
    patient_message: str
    staff_reason_ja: str
    staff_reason_en: str
    temporary: bool
    needs_staff: bool
    cert_issuer: str | None
    cert_serial: str | None
    cert_not_after: float | None
    in_grace: bool
    records: list[dict[str, Any]] | None
    created_at: float
    updated_at: float
    day: str
    decided_by: str | None
    decided_at: float | None
    handled_by: str | None
    handled_at: float | None

    @classmethod
    def from_row(cls, row: Row) -> Verification:
        return cls(
            id=row["id"],
            device_id=row["device_id"],
            mode=row["mode"],
            state=row["state"],
            reason_code=row["reason_code"],
            validity_code=row["validity_code"],
            patient_message=row["patient_message"],
            staff_reason_ja=outcome(row["reason_code"]).staff_ja,
            staff_reason_en=outcome(row["reason_code"]).staff_en,
            temporary=bool(row["temporary"]),
            needs_staff=bool(row["needs_staff"]),
            cert_issuer=row["cert_issuer"],
            cert_serial=row["cert_serial"],
            cert_not_after=row["cert_not_after"],
            in_grace=bool(row["in_grace"]),
            records=json.loads(row["records"]) if row["records"] is not None else None,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            day=row["day"],
            decided_by=row["decided_by"],
            decided_at=row["decided_at"],
            handled_by=row["handled_by"],
            handled_at=row["handled_at"],
        )

    @property
    def public_state(self) -> Literal["done", "awaiting_staff"]:
        return "done" if self.state == "done" else "awaiting_staff"

    @property
    def decision(self) -> Decision | None:
        if self.decided_by is None:
            return None
        return "rejected" if self.reason_code == "visual.rejected" else "confirmed"

    def kiosk_record(self) -> dict[str, str] | None:
        """What the kiosk may show of the record: the copay ratio of a single valid record."""
        if self.validity_code != 1 or not self.records or len(self.records) != 1:
            return None
        ratio = self.records[0].get("InsuredPartialContributionRatio")
        return {"InsuredPartialContributionRatio": ratio} if isinstance(ratio, str) else None

    def notice(self) -> dict[str, Any]:
        """The change notice for dashboards: no patient data, only what a list row shows."""
        return {
            "type": "verification",
            "id": self.id,
            "device_id": self.device_id,
            "mode": self.mode,
            "state": self.public_state,
            "reason_code": self.reason_code,
            "validity_code": self.validity_code,
            "needs_staff": self.needs_staff and self.handled_at is None,
            "created_at": self.created_at,
            "day": self.day,
        }


_COLUMNS = (
    "id, device_id, mode, state, reason_code, validity_code, patient_message, temporary,"
    " needs_staff, cert_issuer, cert_serial, cert_not_after, in_grace, records, created_at,"
    " updated_at, day, decided_by, decided_at, handled_by, handled_at"
)
# Statements built from the constant column list only (every value is a bound parameter).
_RETURNING = f" RETURNING {_COLUMNS}"
_SELECT = f"SELECT {_COLUMNS} FROM verifications"  # noqa: S608
_DECIDED = (
    "UPDATE verifications SET state = 'done', reason_code = ?, validity_code = ?,"  # noqa: S608
    " patient_message = ?, temporary = ?, needs_staff = ?, records = ?,"
    " updated_at = ?, handled_by = ?, handled_at = ? WHERE id = ?" + _RETURNING
)
_RECHECKED = _DECIDED.replace(
    " WHERE id = ?", " WHERE id = ? AND reason_code = 'national.unavailable'"
)
_HANDLED = (
    "UPDATE verifications SET handled_by = ?, handled_at = ?, updated_at = ?"  # noqa: S608
    " WHERE id = ? AND state = 'done' AND handled_at IS NULL" + _RETURNING
)
_INSERT = (
    f"INSERT INTO verifications ({_COLUMNS}) VALUES"  # noqa: S608
    " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL)" + _RETURNING
)


@dataclass(frozen=True)
class _CertificateFacts:
    issuer: str
    serial: int
    not_after: float


#: reason code, validity code, records
NationalResult = tuple[str, int | None, list[dict[str, Any]] | None]


@dataclass(frozen=True)
class PendingVerification:
    """A verification after its local checks: failed (``reason``) or due for the connector."""

    device_id: str
    mode: str
    started_at: float
    #: the reason code when the local checks decided; None = ask the national system
    reason: str | None
    facts: _CertificateFacts | None
    in_grace: bool

    @property
    def needs_national(self) -> bool:
        return self.reason is None


class EligibilityService:
    def __init__(
        self,
        db: Database,
        trust: JpkiTrust,
        connector: NationalConnector,
        *,
        clock: Callable[[], float],
        events: EventHub | None = None,
        timezone: str = "Asia/Tokyo",
        nonce_ttl_s: float = 60.0,
        cipher: RecordCipher | None = None,
    ) -> None:
        """``cipher`` seals the records in the database (``clinic.at_rest``)."""
        self._db = db
        self._cipher = cipher
        self.trust = trust
        self.connector = connector
        self._clock = clock
        self._events = events or EventHub()
        self.tz = ZoneInfo(timezone)
        self.nonce_ttl_s = nonce_ttl_s
        #: called with each verification the national system answered (result files)
        self.on_completed: list[Callable[[Verification], object]] = []

    # -- helpers --

    def _sealed_records(
        self, verification_id: str, records: list[dict[str, Any]] | None
    ) -> str | None:
        text = json.dumps(records, ensure_ascii=False) if records is not None else None
        return seal_optional(self._cipher, text, aad("verifications", "records", verification_id))

    def _load(self, row: Row) -> Verification:
        """A verification from its row, its records opened with the record key."""
        stored = row["records"]
        if stored is None or self._cipher is None:
            return Verification.from_row(row)
        plain = open_optional(self._cipher, stored, aad("verifications", "records", row["id"]))
        return Verification.from_row({**row, "records": plain})

    def seal_existing(self, batch: int = 500) -> int:
        """Seal the records written before the record key existed (run at start)."""
        if self._cipher is None:
            return 0
        sealed = 0
        while True:
            with self._db.transaction(write=True) as tx:
                rows = tx.all(
                    "SELECT id, records FROM verifications WHERE records IS NOT NULL"
                    " AND records NOT LIKE ? LIMIT ?",
                    (PREFIX + "%", batch),
                )
                for row in rows:
                    tx.execute(
                        "UPDATE verifications SET records = ? WHERE id = ?",
                        (
                            self._cipher.seal(
                                row["records"], aad("verifications", "records", row["id"])
                            ),
                            row["id"],
                        ),
                    )
            sealed += len(rows)
            if len(rows) < batch:
                return sealed

    def _announce(self, verification: Verification) -> None:
        """Tell dashboards; hand a check the national system answered to ``on_completed``
        (a failure there never undoes the check: it is logged)."""
        self._events.publish(verification.notice())
        if verification.state == "done" and verification.validity_code is not None:
            for completed in self.on_completed:
                try:
                    completed(verification)
                except Exception:
                    log.exception("handing on a completed check failed")

    def now(self) -> float:
        return self._clock()

    def day_of(self, moment: float) -> str:
        return dt.datetime.fromtimestamp(moment, self.tz).date().isoformat()

    def iso(self, moment: float) -> str:
        return dt.datetime.fromtimestamp(moment, self.tz).isoformat(timespec="seconds")

    # -- challenges --

    def issue_challenge(self, device_id: str) -> Challenge:
        nonce = secrets.token_bytes(NONCE_BYTES)
        now = self._clock()
        expires = now + self.nonce_ttl_s
        self._db.write(
            "INSERT INTO challenges (nonce, device_id, issued_at, expires_at) VALUES (?, ?, ?, ?)",
            (nonce.hex(), device_id, now, expires),
        )
        return Challenge(nonce, now, expires)

    def _consume_nonce(self, device_id: str, nonce: bytes, now: float) -> str | None:
        """None when the nonce is good (it is now used), else the reason code."""
        row = self._db.write_one(
            "UPDATE challenges SET used_at = ? WHERE nonce = ? AND device_id = ?"
            " AND used_at IS NULL AND expires_at >= ? RETURNING nonce",
            (now, nonce.hex(), device_id, now),
        )
        if row is not None:
            return None
        with self._db.transaction() as tx:
            existing = tx.one(
                "SELECT device_id, used_at, expires_at FROM challenges WHERE nonce = ?",
                (nonce.hex(),),
            )
        if existing is None or existing["device_id"] != device_id:
            return "nonce.unknown"
        if existing["used_at"] is not None:
            return "nonce.used"
        return "nonce.expired"

    def purge_challenges(self, older_than_s: float = 3600.0) -> int:
        with self._db.transaction(write=True) as tx:
            return tx.execute(
                "DELETE FROM challenges WHERE issued_at < ?", (self._clock() - older_than_s,)
            )

    # -- verifications --

    def verify(
        self,
        device_id: str,
        nonce: bytes,
        mode: Mode,
        certificate_der: bytes,
        signature: bytes | None,
    ) -> Verification:
        """The whole check in one call (``begin``, ``ask_national`` when due, ``finish``)."""
        pending = self.begin(device_id, nonce, mode, certificate_der, signature)
        answer = self.ask_national(pending) if pending.needs_national else None
        return self.finish(pending, answer)

    def begin(
        self,
        device_id: str,
        nonce: bytes,
        mode: Mode,
        certificate_der: bytes,
        signature: bytes | None,
    ) -> PendingVerification:
        """Checks 1-5: consumes the nonce; quick (local database and CPU only)."""
        now = self._clock()
        moment = dt.datetime.fromtimestamp(now, dt.UTC)
        reason = self._consume_nonce(device_id, nonce, now)
        certificate: x509.Certificate | None = None
        facts: _CertificateFacts | None = None
        in_grace = False
        if reason is None:
            try:
                certificate = x509.load_der_x509_certificate(certificate_der)
                facts = _CertificateFacts(
                    certificate.issuer.rfc4514_string(),
                    certificate.serial_number,
                    certificate.not_valid_after_utc.timestamp(),
                )
            except ValueError:
                reason = "certificate.malformed"
        if reason is None and certificate is not None and mode == "pin":
            if signature is None:
                reason = "signature.missing"
            elif not verify_card_signature(
                certificate, signed_message(nonce, device_id, mode), signature
            ):
                reason = "signature.invalid"
        if reason is None and certificate is not None:
            reason, in_grace = self._certificate_reason(certificate, moment)
        if reason is None and mode == "visual":
            reason = "visual.awaiting_staff"
        return PendingVerification(device_id, mode, now, reason, facts, in_grace)

    def ask_national(self, pending: PendingVerification) -> NationalResult:
        """Check 6: the connector (may block: network, simulated latency)."""
        assert pending.facts is not None
        return self._ask_national(pending.facts.issuer, pending.facts.serial, pending.in_grace)

    def finish(self, pending: PendingVerification, answer: NationalResult | None) -> Verification:
        """Record the outcome and announce it."""
        if pending.reason is not None:
            reason, validity, records = pending.reason, None, None
        elif answer is not None:
            reason, validity, records = answer
        else:
            raise ValueError("a verification that passed its checks needs the national answer")
        state = "awaiting_staff" if reason == "visual.awaiting_staff" else "done"
        result = outcome(reason)
        facts = pending.facts
        now = pending.started_at
        verification_id = uuid.uuid4().hex
        row = self._db.write_one(
            _INSERT,
            (
                verification_id,
                pending.device_id,
                pending.mode,
                state,
                reason,
                validity,
                result.patient_message,
                int(result.temporary),
                int(result.needs_staff),
                facts.issuer if facts else None,
                str(facts.serial) if facts else None,
                facts.not_after if facts else None,
                int(pending.in_grace),
                self._sealed_records(verification_id, records),
                now,
                self._clock(),
                self.day_of(now),
            ),
        )
        assert row is not None
        verification = self._load(row)
        self._announce(verification)
        return verification

    def _certificate_reason(
        self, certificate: x509.Certificate, moment: dt.datetime
    ) -> tuple[str | None, bool]:
        ca = self.trust.issuer_of(certificate)
        if ca is None:
            return "certificate.untrusted", False
        revoked = self.trust.is_revoked(certificate, ca, moment)
        if revoked is None:
            return "revocation.unavailable", False
        if revoked:
            return "certificate.revoked", False
        validity = validity_at(certificate, moment)
        if validity == "not_yet_valid":
            return "certificate.not_yet_valid", False
        if validity == "expired":
            return "certificate.expired", False
        return None, validity == "in_grace"

    def _ask_national(self, issuer: str, serial: int, in_grace: bool) -> NationalResult:
        try:
            answer = self.connector.lookup(issuer, serial)
        except NationalUnavailable as exc:
            log.warning("national system unavailable: %s", exc)
            return "national.unavailable", None, None
        except Exception:
            log.exception("the national connector failed")
            return "national.unavailable", None, None
        if answer.revoked:
            return "national.revoked", None, None
        reason = VALIDITY_REASONS[answer.validity_code]
        if reason == "eligible" and in_grace:
            reason = "eligible.in_grace"
        return reason, answer.validity_code, list(answer.records)

    def get(self, verification_id: str) -> Verification | None:
        with self._db.transaction() as tx:
            row = tx.one(_SELECT + " WHERE id = ?", (verification_id,))
        return self._load(row) if row is not None else None

    def decide(
        self,
        verification_id: str,
        decision: Decision,
        *,
        by: str,
        device_id: str | None = None,
    ) -> Verification:
        """Staff confirmed (or rejected) a visual check; then the national system is asked.

        ``device_id`` limits the decision to that kiosk's own verification (the kiosk's
        staff button). The same decision twice is answered with the current state.
        """
        now = self._clock()
        claim = (
            "UPDATE verifications SET state = 'deciding', updated_at = ?,"
            " decided_by = ?, decided_at = ? WHERE id = ? AND state = 'awaiting_staff'"
        )
        params: tuple[Any, ...] = (now, by, now, verification_id)
        if device_id is not None:
            claim += " AND device_id = ?"
            params += (device_id,)
        with self._db.transaction(write=True) as tx:
            claimed = tx.one(claim + _RETURNING, params)
        if claimed is None:
            current = self.get(verification_id)
            if current is None or (device_id is not None and current.device_id != device_id):
                raise NotFound(verification_id)
            if current.decision == decision:
                return current
            raise Conflict(f"verification is {current.state}, not awaiting staff", current)
        pending = self._load(claimed)
        validity: int | None = None
        records: list[dict[str, Any]] | None = None
        if decision == "rejected":
            reason = "visual.rejected"
        elif pending.cert_issuer is None or pending.cert_serial is None:  # pragma: no cover
            reason = "certificate.malformed"
        else:
            reason, validity, records = self._ask_national(
                pending.cert_issuer, int(pending.cert_serial), pending.in_grace
            )
        result = outcome(reason)
        done = self._clock()
        handled = decision == "rejected" or not result.needs_staff
        with self._db.transaction(write=True) as tx:
            row = tx.one(
                _DECIDED,
                (
                    reason,
                    validity,
                    result.patient_message,
                    int(result.temporary),
                    int(result.needs_staff),
                    self._sealed_records(verification_id, records),
                    done,
                    by if handled else None,
                    done if handled else None,
                    verification_id,
                ),
            )
        assert row is not None
        verification = self._load(row)
        self._announce(verification)
        return verification

    def recheck(self, verification_id: str, *, by: str) -> Verification:
        """Ask the national system again for a check it could not answer (the outage
        path); the verification as it stands after (unchanged while it still cannot)."""
        current = self.get(verification_id)
        if current is None:
            raise NotFound(verification_id)
        if (
            current.reason_code != "national.unavailable"
            or current.cert_issuer is None
            or current.cert_serial is None
        ):
            return current
        reason, validity, records = self._ask_national(
            current.cert_issuer, int(current.cert_serial), current.in_grace
        )
        if reason == "national.unavailable":
            return current
        result = outcome(reason)
        done = self._clock()
        with self._db.transaction(write=True) as tx:
            row = tx.one(
                _RECHECKED,
                (
                    reason,
                    validity,
                    result.patient_message,
                    int(result.temporary),
                    int(result.needs_staff),
                    self._sealed_records(verification_id, records),
                    done,
                    by,
                    done,
                    verification_id,
                ),
            )
        if row is None:  # re-checked meanwhile by someone else
            return self.get(verification_id) or current
        verification = self._load(row)
        self._announce(verification)
        return verification

    def mark_handled(self, verification_id: str, *, by: str) -> Verification:
        now = self._clock()
        with self._db.transaction(write=True) as tx:
            row = tx.one(
                _HANDLED,
                (by, now, now, verification_id),
            )
        if row is None:
            current = self.get(verification_id)
            if current is None:
                raise NotFound(verification_id)
            if current.handled_at is not None:
                return current
            raise Conflict("a pending visual check is confirmed, not marked handled", current)
        verification = self._load(row)
        self._events.publish(verification.notice())
        return verification

    def recover_interrupted(self, older_than_s: float = 0.0) -> int:
        """Decisions cut short by a stop go back to the staff queue (run at start).

        With several instances on one database, another instance may be deciding right now:
        then only claims older than ``older_than_s`` (longer than any national call) go back.
        """
        with self._db.transaction(write=True) as tx:
            return tx.execute(
                "UPDATE verifications SET state = 'awaiting_staff', decided_by = NULL,"
                " decided_at = NULL WHERE state = 'deciding' AND decided_at <= ?",
                (self._clock() - older_than_s,),
            )

    # -- lists for the dashboard --

    def of_day(self, day: str) -> list[Verification]:
        with self._db.transaction() as tx:
            rows = tx.all(
                _SELECT + " WHERE day = ? ORDER BY created_at DESC, id DESC",
                (day,),
            )
        return [self._load(r) for r in rows]

    def staff_queue(self, since_s: float = 24 * 3600) -> list[Verification]:
        with self._db.transaction() as tx:
            rows = tx.all(
                _SELECT + " WHERE needs_staff = 1 AND handled_at IS NULL AND created_at >= ?"
                " ORDER BY created_at ASC",
                (self._clock() - since_s,),
            )
        return [self._load(r) for r in rows]
