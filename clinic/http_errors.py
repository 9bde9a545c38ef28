"""The one mapping from the project's exception tree to HTTP answers, for both listeners.

Routes let the errors of the layers below them rise; this module turns them into answers,
registered once per application (``install_json_errors`` for the kiosk API, the dashboard's
error page in ``clinic.dashboard.app``) and used by the kiosk API's device gate, which runs
before the application::

    exception (most specific first)           status  detail                      headers
    clinic.devices.DeviceRefused              403     why                         -
    contract.errors.DeviceAuthError           401     why                         WWW-Authenticate
    NotFound                                  404     no such verification        -
    Conflict                                  409     the state that refused it   -
    Refused                                   403     why                         -
    ConflictError (a storage constraint)      409     generic                     -
    PasswordPolicyError                       422     the policy                  -
    StorageError, temporary                   503     generic                     Retry-After
    NationalUnavailable                       503     generic                     Retry-After
    StorageError                              500     generic                     -
    any other OnshiError                      500     generic                     -

The body is ``contract.api.error_body`` (``{"detail": "..."}``); database messages stay in
the server's log, never in an answer. Exceptions outside the tree are programming errors and
remain the framework's plain 500.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from clinic.devices import DeviceRefused
from clinic.errors import (
    Conflict,
    ConflictError,
    NationalUnavailable,
    NotFound,
    PasswordPolicyError,
    Refused,
    StorageError,
)
from contract.api import error_body
from contract.errors import DeviceAuthError, OnshiError

log = logging.getLogger(__name__)

#: Seconds a client waits after a temporary storage failure (the database busy or away).
STORAGE_RETRY_AFTER_S = 5
#: Seconds a client waits when the national system does not answer.
NATIONAL_RETRY_AFTER_S = 30


@dataclass(frozen=True)
class ErrorAnswer:
    """What an exception becomes: a status, the detail for the body, extra headers."""

    status: int
    detail: str
    headers: dict[str, str] = field(default_factory=dict)


def answer_for(exc: OnshiError) -> ErrorAnswer:
    """The HTTP answer for an error of the tree (see the table above)."""
    if isinstance(exc, DeviceRefused):
        return ErrorAnswer(403, str(exc))
    if isinstance(exc, DeviceAuthError):
        return ErrorAnswer(401, str(exc), {"WWW-Authenticate": "Onshi-Device"})
    if isinstance(exc, NotFound):
        return ErrorAnswer(404, "no such verification")
    if isinstance(exc, Conflict):
        return ErrorAnswer(409, str(exc))
    if isinstance(exc, Refused):
        return ErrorAnswer(403, str(exc))
    if isinstance(exc, ConflictError):
        return ErrorAnswer(409, "the change conflicts with what is stored")
    if isinstance(exc, PasswordPolicyError):
        return ErrorAnswer(422, str(exc))
    if isinstance(exc, StorageError) and exc.temporary:
        return ErrorAnswer(
            503,
            "the database is busy or unavailable; try again later",
            {"Retry-After": str(STORAGE_RETRY_AFTER_S)},
        )
    if isinstance(exc, NationalUnavailable):
        return ErrorAnswer(
            503,
            "the national system is unavailable; try again later",
            {"Retry-After": str(NATIONAL_RETRY_AFTER_S)},
        )
    if isinstance(exc, StorageError):
        return ErrorAnswer(500, "storage error")
    return ErrorAnswer(500, "internal error")


def logged_answer(where: str, exc: OnshiError) -> ErrorAnswer:
    """``answer_for``, writing the server's failures to its log (``where``: method and path).

    The log keeps what the answer leaves out (the database's own message); refusals of the
    request itself (4xx) are the client's business and are not logged.
    """
    answer = answer_for(exc)
    if answer.status == 503:
        log.warning("%s: %s (answered 503)", where, exc)
    elif answer.status >= 500:
        log.error("%s: %s", where, exc, exc_info=exc)
    return answer


def where(request: Request) -> str:
    return f"{request.method} {request.url.path}"


def json_error(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    """An error answer with the JSON body of ``contract.api``."""
    return Response(
        error_body(detail), status_code=status, headers=headers, media_type="application/json"
    )


def json_answer(answer: ErrorAnswer) -> Response:
    return json_error(answer.status, answer.detail, answer.headers)


async def _json_handler(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, OnshiError):  # pragma: no cover - registered for OnshiError only
        raise exc
    return json_answer(logged_answer(where(request), exc))


def install_json_errors(app: Starlette) -> None:
    """Answer every error of the tree that escapes a route of ``app`` as JSON (see above)."""
    app.add_exception_handler(OnshiError, _json_handler)
