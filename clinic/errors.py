"""The clinic server's exception tree, under the kiosk's own root.

Drivers' errors (sqlite3, psycopg, httpx for CRL downloads) are translated at their adapters
into these; the HTTP layer maps them to status codes in one place::

    kiosk.errors.KioskError
    └── ClinicError
        ├── StorageError                the database refused or failed (``temporary`` may be set)
        │   └── ConflictError           a uniqueness or integrity constraint refused the change
        ├── NationalUnavailable         the national system did not answer (temporary)
        ├── NotFound                    no such verification for this kiosk (also LookupError)
        ├── Conflict                    the verification's state does not allow this
        └── PasswordPolicyError         a staff password too weak (also ValueError)

Request authentication failures stay in the kiosk's tree (``kiosk.errors.DeviceAuthError``,
and ``clinic.devices.DeviceRefused`` below it), since both sides share that protocol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiosk.errors import KioskError

if TYPE_CHECKING:
    from clinic.service import Verification


class ClinicError(KioskError):
    """Root of every error the clinic server raises on purpose."""

    code = "clinic"


class StorageError(ClinicError):
    """The database refused or failed an operation."""

    code = "clinic.storage"

    def __init__(self, message: str, *, temporary: bool = False) -> None:
        super().__init__(message)
        self.temporary = temporary


class ConflictError(StorageError):
    """A uniqueness or integrity constraint refused the change."""

    code = "clinic.storage.conflict"


class NationalUnavailable(ClinicError):
    """No answer from the national system: outage, maintenance or timeout (temporary)."""

    temporary = True
    code = "clinic.national_unavailable"


class NotFound(ClinicError, LookupError):
    """No such verification (or not one this kiosk made)."""

    code = "clinic.not_found"


class Conflict(ClinicError):
    """The verification is not in a state that allows this."""

    code = "clinic.conflict"

    def __init__(self, message: str, current: Verification) -> None:
        super().__init__(message)
        self.current = current


class PasswordPolicyError(ClinicError, ValueError):
    """A staff password that does not meet the policy."""

    code = "clinic.password_policy"
