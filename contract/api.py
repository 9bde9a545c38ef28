"""The clinic server's API as both sides see it: paths, the error body, temporary statuses.

Every kiosk route lives under ``/api/v1``; every request carries the device signature of
:mod:`contract.device_signing`. An error answer is JSON ``{"detail": "..."}`` with a status
code; the statuses in :data:`TEMPORARY_STATUSES` mean "the same request may succeed later"
and may come with ``Retry-After`` (seconds, or an HTTP date)::

    POST /api/v1/challenges                          a fresh single-use nonce
    POST /api/v1/verifications                       the signed challenge and certificate
    GET  /api/v1/verifications/{id}?wait=S           the result (long-poll while staff decide)
    POST /api/v1/verifications/{id}/confirm          the staff button's decision
    POST /api/v1/heartbeat                           the kiosk's health
    POST /api/v1/outbox/batch                        sealed outbox records (contract.outbox_record)
    POST /api/v1/staff-calls                         a staff call opened or cleared (idempotent)
"""

from __future__ import annotations

import email.utils
import json
from typing import Any

API_PREFIX = "/api/v1"

#: Paths below :data:`API_PREFIX`.
CHALLENGES = "/challenges"
VERIFICATIONS = "/verifications"
HEARTBEAT = "/heartbeat"
OUTBOX_BATCH = "/outbox/batch"
STAFF_CALLS = "/staff-calls"

#: Status codes after which the same request may succeed later: a timeout, too early, too
#: many requests, a server or proxy error, the service unavailable.
TEMPORARY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

#: How much of an error body's detail a client keeps for its logs.
DETAIL_LIMIT = 200


def verification_path(verification_id: str) -> str:
    """``/verifications/{id}``, refusing an id that is not a plain token."""
    if not verification_id or not all(c.isalnum() or c in "-_" for c in verification_id):
        raise ValueError(f"not a verification id: {verification_id!r}")
    return f"{VERIFICATIONS}/{verification_id}"


def confirm_path(verification_id: str) -> str:
    """``/verifications/{id}/confirm``."""
    return verification_path(verification_id) + "/confirm"


def is_temporary(status: int) -> bool:
    """True when an answer with this status may turn out differently if asked again."""
    return status in TEMPORARY_STATUSES


def error_body(detail: str) -> bytes:
    """The JSON body of an error answer."""
    return json.dumps({"detail": detail}, ensure_ascii=False).encode("utf-8")


def error_detail(body: bytes | str) -> str:
    """What an error answer says, cut to :data:`DETAIL_LIMIT`; any body is accepted."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        document: Any = json.loads(text)
    except ValueError:
        return text[:DETAIL_LIMIT]
    if isinstance(document, dict) and "detail" in document:
        return str(document["detail"])[:DETAIL_LIMIT]
    return str(document)[:DETAIL_LIMIT]


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)
