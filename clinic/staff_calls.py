"""Staff calls: every kiosk screen that tells the patient staff were called puts one here.

A kiosk reports a call when its screen says so (no card, a notice that sends the patient to
the desk, the card left on the reader at the level that says staff were told, the reader
missing, the clinic server unreachable, a visual check waiting) and reports it cleared when
the kiosk goes back to idle by itself or staff decided. Staff clear it too, on the dashboard
("handled"). The kiosk names each call with a key of its own (unique per kiosk), so a report
sent twice (the kiosk retries until the server answers) changes nothing; the short number
(``visit``) is what the kiosk's screen shows next to the notice code.

A call raised while the kiosk could not reach the server arrives when it can (``late``): it
stays open until staff mark it handled, even if the kiosk went back to idle meanwhile - the
patient was sent to the desk, and staff should know.

A call may name the verification it belongs to (a notice after a check, a visual check
waiting): the queue then shows them as one item, and marking either handled clears both.
No patient data is kept here: the kiosk, a notice number, a reason code and times.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from clinic.errors import NotFound
from clinic.events import EventHub
from clinic.storage import Database, Row
from contract.notices import StaffCallReason


@dataclass(frozen=True)
class StaffCall:
    id: str
    device_id: str
    call_key: str
    visit: int
    reason: str
    notice: int | None
    verification_id: str | None
    raised_at: float
    #: the kiosk raised it while it could not reach the server (delivered later)
    late: bool
    cleared_at: float | None
    cleared_by: str | None

    @classmethod
    def from_row(cls, row: Row) -> StaffCall:
        return cls(
            id=row["id"],
            device_id=row["device_id"],
            call_key=row["call_key"],
            visit=int(row["visit"]),
            reason=row["reason"],
            notice=row["notice"],
            verification_id=row["verification_id"],
            raised_at=float(row["raised_at"]),
            late=bool(row["late"]),
            cleared_at=row["cleared_at"],
            cleared_by=row["cleared_by"],
        )

    @property
    def open(self) -> bool:
        return self.cleared_at is None

    @property
    def notice_code(self) -> str:
        return f"K-{self.notice}" if self.notice is not None else ""

    @property
    def visit_label(self) -> str:
        """The short number the kiosk's screen shows next to the notice code: ``#007``."""
        return f"#{self.visit % 1000:03d}"

    def event(self) -> dict[str, object]:
        """The change notice for dashboards (no patient data)."""
        return {
            "type": "staff_call",
            "call_id": self.id,
            "device_id": self.device_id,
            "open": self.open,
            "verification_id": self.verification_id,
        }


_SELECT = (
    "SELECT id, device_id, call_key, visit, reason, notice, verification_id, raised_at, late,"
    " cleared_at, cleared_by FROM staff_calls"
)


class StaffCalls:
    """The calls, in the clinic's database (table ``staff_calls``)."""

    def __init__(self, db: Database, events: EventHub, clock: Callable[[], float]) -> None:
        self._db = db
        self._events = events
        self._clock = clock

    def report(
        self,
        device_id: str,
        call_key: str,
        *,
        state: Literal["open", "cleared"],
        visit: int,
        reason: StaffCallReason,
        notice: int | None,
        verification_id: str | None,
        late: bool,
    ) -> StaffCall:
        """A kiosk's report: the call is open, or the kiosk cleared it. Repeats change nothing.

        ``cleared`` for a call never reported open records it already cleared (it is not
        shown). A call that arrived ``late`` is not cleared by the kiosk: staff clear it.
        """
        now = self._clock()
        with self._db.transaction(write=True) as tx:
            row = tx.one(
                _SELECT + " WHERE device_id = ? AND call_key = ?",
                (device_id, call_key),
            )
            if row is None:
                call_id = secrets.token_hex(16)
                tx.execute(
                    "INSERT INTO staff_calls (id, device_id, call_key, visit, reason, notice,"
                    " verification_id, raised_at, late, cleared_at, cleared_by)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        call_id,
                        device_id,
                        call_key,
                        visit,
                        reason,
                        notice,
                        verification_id,
                        now,
                        int(late),
                        now if state == "cleared" else None,
                        "kiosk" if state == "cleared" else None,
                    ),
                )
            else:
                call_id = row["id"]
                if state == "cleared" and row["cleared_at"] is None and not row["late"]:
                    tx.execute(
                        "UPDATE staff_calls SET cleared_at = ?, cleared_by = 'kiosk' WHERE id = ?",
                        (now, call_id),
                    )
            current = tx.one(_SELECT + " WHERE id = ?", (call_id,))
        assert current is not None
        call = StaffCall.from_row(current)
        self._events.publish(call.event())
        return call

    def handle(self, call_id: str, *, by: str) -> StaffCall:
        """Staff marked the call handled (a second time changes nothing)."""
        with self._db.transaction(write=True) as tx:
            tx.execute(
                "UPDATE staff_calls SET cleared_at = ?, cleared_by = ?"
                " WHERE id = ? AND cleared_at IS NULL",
                (self._clock(), by, call_id),
            )
            row = tx.one(_SELECT + " WHERE id = ?", (call_id,))
        if row is None:
            raise NotFound(call_id)
        call = StaffCall.from_row(row)
        self._events.publish(call.event())
        return call

    def handle_for_verification(self, verification_id: str, *, by: str) -> int:
        """Staff handled a verification: the calls that belong to it are cleared too."""
        with self._db.transaction(write=True) as tx:
            rows = tx.all(
                _SELECT + " WHERE verification_id = ? AND cleared_at IS NULL",
                (verification_id,),
            )
            tx.execute(
                "UPDATE staff_calls SET cleared_at = ?, cleared_by = ?"
                " WHERE verification_id = ? AND cleared_at IS NULL",
                (self._clock(), by, verification_id),
            )
        for row in rows:
            self._events.publish(StaffCall.from_row(row).event() | {"open": False})
        return len(rows)

    def get(self, call_id: str) -> StaffCall | None:
        with self._db.transaction() as tx:
            row = tx.one(_SELECT + " WHERE id = ?", (call_id,))
        return StaffCall.from_row(row) if row is not None else None

    def open_calls(self) -> list[StaffCall]:
        """The calls waiting for staff, oldest first."""
        with self._db.transaction() as tx:
            rows = tx.all(_SELECT + " WHERE cleared_at IS NULL ORDER BY raised_at ASC")
        return [StaffCall.from_row(r) for r in rows]

    def for_verification(self, verification_id: str) -> list[StaffCall]:
        """Every call that named this verification, newest first (the detail page)."""
        with self._db.transaction() as tx:
            rows = tx.all(
                _SELECT + " WHERE verification_id = ? ORDER BY raised_at DESC",
                (verification_id,),
            )
        return [StaffCall.from_row(r) for r in rows]
