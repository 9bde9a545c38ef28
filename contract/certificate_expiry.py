"""When the kiosk and the dashboard mention the user certificate's expiry.

Face-authentication readers warn from three months before the user-authentication
certificate expires until three months after (the card still works for insurance in that
grace period). The clinic server sends the expiry date to the kiosk in the verification
answer's ``certificate_expires`` (``YYYY-MM-DD``, the clinic's local date) only within that
window; otherwise the field is null.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

#: the verification answer's field
FIELD = "certificate_expires"
#: three months, either side of the expiry
WINDOW_S = 92 * 86400


def in_window(not_after: float | None, now: float) -> bool:
    return not_after is not None and abs(not_after - now) <= WINDOW_S


def expiry_to_show(not_after: float | None, now: float, timezone: str) -> str | None:
    """The expiry date to mention (``YYYY-MM-DD`` in ``timezone``), or None outside the window."""
    if not_after is None or not in_window(not_after, now):
        return None
    return dt.datetime.fromtimestamp(not_after, ZoneInfo(timezone)).date().isoformat()
