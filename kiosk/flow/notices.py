"""Everything the kiosk can tell a patient that is not plain progress, with a stable number.

The table lives in :mod:`contract.notices`, shared with the clinic server (the dashboard's
notice-code page and staff calls quote the same numbers); the flow and the screens take it
from here.
"""

from __future__ import annotations

from contract.notices import BY_PATIENT_MESSAGE, Notice, NoticeInfo

__all__ = ["BY_PATIENT_MESSAGE", "Notice", "NoticeInfo"]
