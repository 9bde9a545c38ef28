"""The clinic server's branch of the one exception tree (root: ``contract.errors.OnshiError``).

Drivers' errors (sqlite3, psycopg, httpx for CRL downloads) are translated at their adapters
into these; the HTTP layer maps them to status codes in one place (``clinic.http_errors``)::

    contract.errors.OnshiError
    └── ClinicError
        ├── StorageError                the database refused or failed (``temporary`` may be set)
        │   └── ConflictError           a uniqueness or integrity constraint refused the change
        ├── NationalUnavailable         the national system did not answer (temporary)
        ├── NotFound                    no such verification for this kiosk (also LookupError)
        ├── Conflict                    the verification's state does not allow this
        ├── Refused                     understood, and not allowed to this caller (403)
        └── PasswordPolicyError         a staff password too weak (also ValueError)

Request authentication failures stay in the shared part of the tree
(``contract.errors.DeviceAuthError``, and ``clinic.devices.DeviceRefused`` below it), since
both sides share that protocol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from contract.errors import OnshiError

if TYPE_CHECKING:
    from clinic.eligibility import Verification


class ClinicError(OnshiError):
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


class Refused(ClinicError):
    """The request is understood and not allowed to this caller (e.g. a kiosk's staff
    button over its hourly rate, or where the clinic confirms on the dashboard only)."""

    code = "clinic.refused"


class PasswordPolicyError(ClinicError, ValueError):
    """A staff password that does not meet the policy."""

    code = "clinic.password_policy"
