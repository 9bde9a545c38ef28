"""The kiosk's staff button: what a visual check confirmed at the kiosk may do, and undoing it.

A visual check waits until staff compare the card photo with the patient; they confirm on the
dashboard or with the kiosk's physical button (``POST /api/v1/verifications/{id}/confirm``).
The button's request is signed with the kiosk's device key, so software holding a stolen key
could confirm its own visual checks and have the national system fetch the record of any card
whose certificate it can read (certificates are public). The clinic limits what that key can
do:

- **a rate**: one kiosk's button confirms at most ``button_confirms_per_hour`` visual checks in
  any hour (a sliding hour). Beyond it the confirmation is refused (403, the check stays with
  staff on the dashboard), and an **alarm** is raised: a banner on every dashboard page until
  staff acknowledge it, and a ``WARNING`` line in the server's log;
- **revocation**: every button confirmation is listed on the dashboard's queue page with the
  kiosk and the time, and staff may revoke it for ``button_revoke_window_s`` seconds. Revoking
  turns the verification into ``visual.revoked`` (the patient must be checked again at the
  desk), discards the fetched record and is written to the access log;
- **dashboard only**: with ``require_dashboard_confirm = true`` the button's confirmation is
  refused (403) and the kiosk keeps calling staff, who confirm on the dashboard.

The button's *rejection* ("cannot confirm") fetches nothing and stays allowed.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from clinic.access_log import AccessLog
from clinic.eligibility import Decision, EligibilityService, Verification
from clinic.errors import Conflict, NotFound, Refused
from clinic.events import EventHub
from clinic.outcomes import outcome
from clinic.storage import Database, Migration, Schema, Transaction

log = logging.getLogger(__name__)

HOUR_S = 3600.0
RATE_ALARM = "button_rate"

_TABLES = """
CREATE TABLE button_confirmations (
    verification_id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    revoked_at DOUBLE PRECISION,
    revoked_by TEXT
);
CREATE INDEX button_confirmations_device ON button_confirmations (device_id, at);
CREATE INDEX button_confirmations_at ON button_confirmations (at);
CREATE TABLE kiosk_alarms (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    first_at DOUBLE PRECISION NOT NULL,
    last_at DOUBLE PRECISION NOT NULL,
    count BIGINT NOT NULL,
    detail TEXT NOT NULL,
    cleared_at DOUBLE PRECISION,
    cleared_by TEXT
);
CREATE INDEX kiosk_alarms_open ON kiosk_alarms (cleared_at, device_id, kind)
"""

BUTTON_SCHEMA = Schema("button", (Migration.portable(1, _TABLES),))


@dataclass(frozen=True)
class ButtonPolicy:
    """The clinic's settings for the kiosk's staff button (``clinic.toml``)."""

    per_hour: int = 10
    revoke_window_s: float = 1800.0
    dashboard_only: bool = False


@dataclass(frozen=True)
class Alarm:
    id: str
    device_id: str
    kind: str
    first_at: float
    last_at: float
    count: int
    detail: dict[str, Any]


@dataclass(frozen=True)
class ButtonConfirmation:
    """One visual check confirmed with a kiosk's button, as the dashboard lists it."""

    verification_id: str
    device_id: str
    at: float
    revocable_until: float
    revoked_at: float | None
    revoked_by: str | None
    verification: Verification


class StaffButton:
    """Confirmations from kiosks' buttons: the rate, the alarm, the dashboard's revocation."""

    def __init__(
        self,
        db: Database,
        service: EligibilityService,
        access_log: AccessLog,
        policy: ButtonPolicy,
        *,
        clock: Callable[[], float],
        events: EventHub | None = None,
    ) -> None:
        self._db = db
        self._service = service
        self._access_log = access_log
        self.policy = policy
        self._clock = clock
        self._events = events
        self._lock = threading.Lock()
        self._open_alarms: list[Alarm] = []
        self.reload_alarms()

    # -- the kiosk's button --

    def decide(self, verification_id: str, decision: Decision, device_id: str) -> Verification:
        """The kiosk's button: a decision on the kiosk's own visual check, within the rules."""
        by = f"kiosk:{device_id}"
        if decision == "rejected":
            return self._service.decide(verification_id, decision, by=by, device_id=device_id)
        if self.policy.dashboard_only:
            raise Refused(
                "this clinic confirms visual checks on the dashboard only: staff were called"
            )
        reserved, over = self._reserve(verification_id, device_id)
        if over is not None:
            log.warning(
                "ALARM: kiosk %s asked its staff button to confirm more than %d visual checks "
                "in an hour (%d refused so far); refused, staff confirm on the dashboard - "
                "is its device key stolen?",
                device_id,
                self.policy.per_hour,
                over,
            )
            self.reload_alarms()
            if self._events is not None:
                self._events.publish({"type": "alarm", "device_id": device_id})
            raise Refused(
                f"this kiosk's button confirmed {self.policy.per_hour} visual checks in the last "
                "hour: staff were called to confirm on the dashboard"
            )
        try:
            return self._service.decide(verification_id, decision, by=by, device_id=device_id)
        except BaseException:
            if reserved:
                with self._db.transaction(write=True) as tx:
                    tx.execute(
                        "DELETE FROM button_confirmations WHERE verification_id = ?",
                        (verification_id,),
                    )
            raise

    def _reserve(self, verification_id: str, device_id: str) -> tuple[bool, int | None]:
        """(a confirmation was counted now, the alarm's refusal count when over the rate)."""
        now = self._clock()
        with self._db.transaction(write=True) as tx:
            row = tx.one(
                "SELECT device_id, state FROM verifications WHERE id = ?", (verification_id,)
            )
            if row is None or row["device_id"] != device_id:
                raise NotFound(verification_id)
            if row["state"] != "awaiting_staff":
                return False, None  # decided already: the service answers (same, or 409)
            # one kiosk's confirmations one at a time (a row lock on PostgreSQL; SQLite has
            # a single writer anyway), so parallel requests cannot slip past the count
            tx.execute("UPDATE devices SET last_seen = last_seen WHERE device_id = ?", (device_id,))
            if tx.one(
                "SELECT 1 AS x FROM button_confirmations WHERE verification_id = ?",
                (verification_id,),
            ):
                return False, None
            counted = tx.one(
                "SELECT count(*) AS n FROM button_confirmations WHERE device_id = ? AND at > ?",
                (device_id, now - HOUR_S),
            )
            used = int(counted["n"]) if counted is not None else 0
            if used >= self.policy.per_hour:
                return False, self._raise_alarm(tx, device_id, now, used)
            tx.execute(
                "INSERT INTO button_confirmations (verification_id, device_id, at)"
                " VALUES (?, ?, ?)",
                (verification_id, device_id, now),
            )
        return True, None

    def _raise_alarm(self, tx: Transaction, device_id: str, now: float, used: int) -> int:
        """Open the kiosk's rate alarm, or count one more refusal on the open one."""
        detail = json.dumps({"limit": self.policy.per_hour, "confirmed_last_hour": used})
        open_alarm = tx.one(
            "UPDATE kiosk_alarms SET last_at = ?, count = count + 1, detail = ?"
            " WHERE device_id = ? AND kind = ? AND cleared_at IS NULL RETURNING count",
            (now, detail, device_id, RATE_ALARM),
        )
        if open_alarm is not None:
            return int(open_alarm["count"])
        tx.execute(
            "INSERT INTO kiosk_alarms (id, device_id, kind, first_at, last_at, count, detail)"
            " VALUES (?, ?, ?, ?, ?, 1, ?)",
            (uuid.uuid4().hex, device_id, RATE_ALARM, now, now, detail),
        )
        return 1

    # -- alarms (the dashboard's banner) --

    def reload_alarms(self) -> None:
        with self._db.transaction() as tx:
            rows = tx.all(
                "SELECT id, device_id, kind, first_at, last_at, count, detail FROM kiosk_alarms"
                " WHERE cleared_at IS NULL ORDER BY first_at"
            )
        alarms = [
            Alarm(
                id=r["id"],
                device_id=r["device_id"],
                kind=r["kind"],
                first_at=r["first_at"],
                last_at=r["last_at"],
                count=int(r["count"]),
                detail=json.loads(r["detail"]),
            )
            for r in rows
        ]
        with self._lock:
            self._open_alarms = alarms

    def open_alarms(self) -> list[Alarm]:
        """The alarms staff have not acknowledged (kept in memory: every page shows them)."""
        with self._lock:
            return list(self._open_alarms)

    def clear_alarm(self, alarm_id: str, *, by: str) -> None:
        with self._db.transaction(write=True) as tx:
            row = tx.one(
                "UPDATE kiosk_alarms SET cleared_at = ?, cleared_by = ?"
                " WHERE id = ? AND cleared_at IS NULL RETURNING device_id, count",
                (self._clock(), by, alarm_id),
            )
        if row is None:
            raise NotFound(alarm_id)
        self._access_log.record(
            by, "alarm.clear", [None], {"device_id": row["device_id"], "refused": row["count"]}
        )
        self.reload_alarms()

    # -- the dashboard's list and revocation --

    def recent(self) -> list[ButtonConfirmation]:
        """Button confirmations still revocable, and those revoked in that time, newest first."""
        now = self._clock()
        window = self.policy.revoke_window_s
        with self._db.transaction() as tx:
            rows = tx.all(
                "SELECT verification_id, device_id, at, revoked_at, revoked_by"
                " FROM button_confirmations WHERE at >= ? ORDER BY at DESC",
                (now - window,),
            )
        items = []
        for r in rows:
            v = self._service.get(r["verification_id"])
            if v is None:  # pragma: no cover - the verification is never deleted
                continue
            items.append(
                ButtonConfirmation(
                    verification_id=r["verification_id"],
                    device_id=r["device_id"],
                    at=r["at"],
                    revocable_until=r["at"] + window,
                    revoked_at=r["revoked_at"],
                    revoked_by=r["revoked_by"],
                    verification=v,
                )
            )
        return items

    def confirmation_of(self, verification_id: str) -> ButtonConfirmation | None:
        with self._db.transaction() as tx:
            r = tx.one(
                "SELECT verification_id, device_id, at, revoked_at, revoked_by"
                " FROM button_confirmations WHERE verification_id = ?",
                (verification_id,),
            )
        v = self._service.get(verification_id) if r is not None else None
        if r is None or v is None:
            return None
        return ButtonConfirmation(
            verification_id=r["verification_id"],
            device_id=r["device_id"],
            at=r["at"],
            revocable_until=r["at"] + self.policy.revoke_window_s,
            revoked_at=r["revoked_at"],
            revoked_by=r["revoked_by"],
            verification=v,
        )

    def revoke(self, verification_id: str, *, by: str) -> Verification:
        """Staff revoke a button confirmation within the window: the check is rejected."""
        now = self._clock()
        result = outcome("visual.revoked")
        current = self._service.get(verification_id)
        if current is None:
            raise NotFound(verification_id)
        with self._db.transaction(write=True) as tx:
            held = tx.one(
                "SELECT device_id, at, revoked_at FROM button_confirmations"
                " WHERE verification_id = ?",
                (verification_id,),
            )
            if held is None:
                raise NotFound(verification_id)
            if held["revoked_at"] is not None:
                return current
            if now - held["at"] > self.policy.revoke_window_s:
                raise Conflict("the button confirmation is past its revocation window", current)
            changed = tx.execute(
                "UPDATE verifications SET reason_code = ?, patient_message = ?,"
                " validity_code = NULL, records = NULL, temporary = 0, needs_staff = 1,"
                " handled_by = NULL, handled_at = NULL, updated_at = ?"
                " WHERE id = ? AND state = 'done'",
                (result.reason_code, result.patient_message, now, verification_id),
            )
            if changed == 0:
                raise Conflict("the national system is still being asked; try again", current)
            tx.execute(
                "UPDATE button_confirmations SET revoked_at = ?, revoked_by = ?"
                " WHERE verification_id = ?",
                (now, by, verification_id),
            )
        self._access_log.record(
            by,
            "button.revoke",
            [verification_id],
            {"device_id": held["device_id"], "confirmed_at": held["at"]},
        )
        log.warning(
            "staff %s revoked the button confirmation of %s by kiosk %s",
            by,
            verification_id,
            held["device_id"],
        )
        revoked = self._service.get(verification_id)
        assert revoked is not None
        if self._events is not None:
            self._events.publish(revoked.notice())
        return revoked
