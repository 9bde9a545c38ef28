"""What waits for staff, counted the way the queue shows it (every page's badge).

Two sources: verifications that need staff (``EligibilityService.staff_queue``) and the
kiosks' open staff calls (``clinic.staff_calls``). A call that names a verification in the
queue is shown with it, as one item.
"""

from __future__ import annotations

from clinic.context import ClinicContext
from clinic.eligibility import Verification
from clinic.staff_calls import StaffCall, StaffCalls

#: What waits: the verifications that need staff and the open calls.
Waiting = tuple[list[Verification], list[StaffCall]]


def staff_calls(context: ClinicContext) -> StaffCalls:
    return StaffCalls(context.db, context.events, context.clock)


def waiting(context: ClinicContext) -> Waiting:
    """The verifications that need staff and the open staff calls (blocking)."""
    return context.service.staff_queue(), staff_calls(context).open_calls()


def count_waiting(found: Waiting) -> int:
    """How many queue items wait: a call that names a queued verification is not one more."""
    verifications, calls = found
    queued = {v.id for v in verifications}
    return len(verifications) + sum(1 for c in calls if c.verification_id not in queued)
