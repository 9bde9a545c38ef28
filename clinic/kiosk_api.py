"""The kiosks' API, ``/api/v1``: challenges, verifications, staff confirmation, heartbeat.

Every route - the OpenAPI schema included - sits behind ``DeviceGate``: the request must be
signed with a registered, unrevoked device key (``contract.device_signing``) whose certificate
is the one the connection presented in the mutual TLS the listener demands, and its request id
must be new. Handlers find the calling kiosk with ``current_device``.

Check failures of a verification are answers, not errors: HTTP 201 with ``reason_code`` and
``patient_message`` saying what the kiosk shows. Errors are for requests that are malformed
(422), unauthenticated (401), refused (403), about another kiosk's or an unknown verification
(404), or in the wrong state (409), and for a database that is busy or away (503 with
``Retry-After``). Routes let the errors of the service rise: ``clinic.http_errors`` maps them
in one place, for the routes and for the device gate.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import ssl
import time
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clinic.context import ClinicContext
from clinic.devices import DeviceRefused
from clinic.eligibility import Verification
from clinic.errors import NotFound
from clinic.http_errors import install_json_errors, json_answer, json_error, logged_answer
from clinic.national.interface import is_blocking
from clinic.staff_calls import StaffCalls
from contract.api import API_PREFIX, CHALLENGES, HEARTBEAT, STAFF_CALLS, VERIFICATIONS
from contract.certificate_expiry import expiry_to_show
from contract.device_signing import MAX_SKEW_S, verify_request
from contract.errors import DeviceAuthError, OnshiError
from contract.notices import StaffCallReason

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
MAX_WAIT_S = 25.0

_ID_PATTERN = r"^[0-9a-f]{32}$"


# --- the device gate ---------------------------------------------------------------------------


class DeviceGate:
    """ASGI middleware: only signed requests from registered kiosks get through."""

    def __init__(self, app: ASGIApp, context: ClinicContext) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        body = await _read_body(receive)
        if body is None:
            await json_error(413, "request body too large")(scope, receive, send)
            return
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
        query: bytes = scope.get("query_string", b"")
        target = raw_path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        try:
            signed = verify_request(
                Headers(scope=scope),
                scope["method"],
                target,
                body,
                now=self.context.clock(),
            )
            if signed.certificate_der != tls_client_certificate(scope):
                raise DeviceRefused("signed with another certificate than the connection's")
            registry = self.context.devices
            device_id = registry.cached(signed.certificate)
            if device_id is None:
                device_id = await self.context.run(registry.check, signed.certificate)
            if device_id != signed.device_id:  # pragma: no cover - check() compares them
                raise DeviceRefused("device id mismatch")
            await self.context.run_db(
                registry.remember_request,
                device_id,
                signed.request_id,
                signed.timestamp + MAX_SKEW_S + 1,
            )
            if registry.touch_due(device_id):
                await self.context.run_db(registry.touch, device_id)
        except OnshiError as exc:  # the gate runs outside the app and its handlers
            answer = logged_answer(f"{scope['method']} {scope['path']}", exc)
            await json_answer(answer)(scope, receive, send)
            return
        scope.setdefault("state", {})["device_id"] = device_id
        await self.app(scope, _replay(body), send)


def tls_client_certificate(scope: Scope) -> bytes:
    """The DER certificate the client presented in the TLS handshake of this connection.

    The listener puts it into the ASGI TLS extension (``clinic.listeners``); without one the
    request cannot be tied to a device and is refused.
    """
    tls = (scope.get("extensions") or {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or ()
    if not chain:
        raise DeviceAuthError("the connection presented no TLS client certificate")
    return ssl.PEM_cert_to_DER_cert(chain[0])


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the app asks again only to learn of a disconnect
        return {"type": "http.disconnect"}  # pragma: no cover

    return receive


def current_device(request: Request) -> str:
    """The id of the kiosk that signed this request (set by ``DeviceGate``)."""
    device_id: str = request.state.device_id
    return device_id


def context_of(request: Request) -> ClinicContext:
    context: ClinicContext = request.app.state.clinic
    return context


# --- request and answer shapes -----------------------------------------------------------------


def _b64(value: str, *, field: str, max_bytes: int) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{field} is not base64") from None
    if not raw:
        raise ValueError(f"{field} is empty")
    if len(raw) > max_bytes:
        raise ValueError(f"{field} is longer than {max_bytes} bytes")
    return raw


class ChallengeOut(BaseModel):
    nonce: str = Field(description="32 random bytes, base64; single use")
    expires_at: str = Field(description="ISO 8601; about a minute after issue")


class VerificationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nonce: str = Field(max_length=200, description="the challenge's nonce, base64")
    mode: Literal["pin", "visual"]
    certificate: str = Field(
        max_length=16_000, description="the card's user-authentication certificate, DER, base64"
    )
    signature: str | None = Field(
        default=None,
        max_length=2_000,
        description=(
            "RSA PKCS#1 v1.5 SHA-256 signature over contract.challenge.signed_message(nonce, "
            "device, mode), base64; null (only) in visual mode"
        ),
    )

    @field_validator("nonce")
    @classmethod
    def _nonce(cls, value: str) -> str:
        _b64(value, field="nonce", max_bytes=64)
        return value

    @field_validator("certificate")
    @classmethod
    def _certificate(cls, value: str) -> str:
        _b64(value, field="certificate", max_bytes=8_000)
        return value

    @field_validator("signature")
    @classmethod
    def _signature(cls, value: str | None) -> str | None:
        if value is not None:
            _b64(value, field="signature", max_bytes=1_024)
        return value


class KioskRecord(BaseModel):
    InsuredPartialContributionRatio: str = Field(description='"030" = 30 % copay')


class VerificationOut(BaseModel):
    verification_id: str
    state: Literal["done", "awaiting_staff"]
    reason_code: str = Field(description="the check that decided, e.g. certificate.revoked")
    validity_code: int | None = Field(ge=1, le=5, description="1-5, or null before/without it")
    patient_message: str = Field(description="message code the kiosk shows, e.g. eligible")
    staff_reason: str = Field(description="for staff, Japanese")
    staff_reason_en: str = Field(description="for staff, English")
    temporary: bool = Field(description="starting over with a fresh challenge may help")
    record: KioskRecord | None = Field(
        description="the little the kiosk may show of a valid record; the rest stays on the "
        "server for staff"
    )
    created_at: str
    certificate_expires: str | None = Field(
        None,
        description="the user certificate's expiry (YYYY-MM-DD) from three months before it "
        "until three months after; null otherwise",
    )


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["confirmed", "rejected"]


class HeartbeatIn(BaseModel):
    """The kiosk's health; ``detail`` as ``contract.heartbeat.KioskHealth.to_detail`` makes it."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ok", "degraded", "error"]
    detail: dict[str, str | int | float | bool | None] = Field(default_factory=dict, max_length=32)

    @field_validator("detail")
    @classmethod
    def _detail(
        cls, value: dict[str, str | int | float | bool | None]
    ) -> dict[str, str | int | float | bool | None]:
        for key, item in value.items():
            if len(key) > 64 or (isinstance(item, str) and len(item) > 400):
                raise ValueError("heartbeat detail: keys up to 64, texts up to 400 characters")
        return value


class StaffCallIn(BaseModel):
    """A kiosk's staff call, opened or cleared (``clinic.staff_calls``)."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="the kiosk's own"
    )
    state: Literal["open", "cleared"]
    visit: int = Field(ge=0, le=10**9, description="the short number the kiosk's screen shows")
    reason: StaffCallReason
    notice: int | None = Field(default=None, ge=100, le=999, description="K-<number>")
    verification_id: str | None = Field(default=None, pattern=_ID_PATTERN)
    late: bool = Field(default=False, description="raised while the server could not be reached")


def verification_out(context: ClinicContext, v: Verification) -> dict[str, Any]:
    return {
        "verification_id": v.id,
        "state": v.public_state,
        "reason_code": v.reason_code,
        "validity_code": v.validity_code,
        "patient_message": v.patient_message,
        "staff_reason": v.staff_reason_ja,
        "staff_reason_en": v.staff_reason_en,
        "temporary": v.temporary,
        "record": v.kiosk_record(),
        "created_at": context.service.iso(v.created_at),
        "certificate_expires": expiry_to_show(
            v.cert_not_after, context.clock(), context.service.tz.key
        ),
    }


# --- routes -----------------------------------------------------------------------------------

VerificationId = Annotated[str, Path(pattern=_ID_PATTERN, description="32 hex digits")]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or bad device signature"},
    403: {"description": "device certificate not accepted (unknown, revoked)"},
    503: {"description": "the database is busy or unavailable; try again after Retry-After"},
}

router = APIRouter(responses=_ERRORS)


@router.post(CHALLENGES, status_code=201, response_model=ChallengeOut)
async def create_challenge(request: Request) -> dict[str, str]:
    """A fresh single-use nonce for the card to sign."""
    context = context_of(request)
    challenge = await context.run_db(context.service.issue_challenge, current_device(request))
    return {
        "nonce": base64.b64encode(challenge.nonce).decode("ascii"),
        "expires_at": context.service.iso(challenge.expires_at),
    }


@router.post(
    VERIFICATIONS,
    status_code=201,
    response_model=VerificationOut,
    responses={422: {"description": "malformed request"}},
)
async def create_verification(body: VerificationIn, request: Request) -> dict[str, Any]:
    """Check a card and ask the national system (PIN mode), or queue a visual check."""
    if body.mode == "visual" and body.signature is not None:
        raise HTTPException(422, "a visual check carries no signature")
    context = context_of(request)
    service = context.service
    pending = await context.run_db(
        service.begin,
        current_device(request),
        base64.b64decode(body.nonce),
        body.mode,
        base64.b64decode(body.certificate),
        base64.b64decode(body.signature) if body.signature is not None else None,
    )
    answer = None
    if pending.needs_national:
        if is_blocking(service.connector):
            answer = await context.run(service.ask_national, pending)
        else:
            answer = await context.run_db(service.ask_national, pending)
    v = await context.run_db(service.finish, pending, answer)
    return verification_out(context, v)


@router.get(
    VERIFICATIONS + "/{verification_id}",
    response_model=VerificationOut,
    responses={404: {"description": "no such verification from this kiosk"}},
)
async def get_verification(
    verification_id: VerificationId,
    request: Request,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S, description="long-poll seconds")] = 0,
) -> dict[str, Any]:
    """The verification's state; with ``wait``, holds the answer until staff decide."""
    context = context_of(request)
    device_id = current_device(request)
    deadline = time.monotonic() + wait
    while True:
        with context.events.watching(verification_id) as changed:
            v = await context.run_db(context.service.get, verification_id)
            if v is None or v.device_id != device_id:
                raise NotFound(verification_id)
            remaining = deadline - time.monotonic()
            if v.public_state == "done" or remaining <= 0 or context.events.closed:
                return verification_out(context, v)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, 2.0))


@router.post(
    VERIFICATIONS + "/{verification_id}/confirm",
    response_model=VerificationOut,
    responses={
        403: {
            "description": "the button may not confirm: the clinic confirms on the dashboard "
            "only, or this kiosk went over its hourly rate (staff were called)"
        },
        404: {"description": "no such verification from this kiosk"},
        409: {"description": "not a visual check waiting for staff"},
    },
)
async def confirm_verification(
    verification_id: VerificationId, body: DecisionIn, request: Request
) -> dict[str, Any]:
    """Staff pressed the kiosk's physical button after comparing the card photo.

    Within the clinic's rules for the button (``clinic.button``): refused with 403 where the
    clinic confirms on the dashboard only, or when this kiosk's button went over its hourly
    rate (then an alarm is raised); the check stays with staff on the dashboard either way.
    """
    context = context_of(request)
    device_id = current_device(request)
    if context.button is not None:
        v = await context.run(context.button.decide, verification_id, body.decision, device_id)
    else:
        v = await context.run(
            context.service.decide,
            verification_id,
            body.decision,
            by=f"kiosk:{device_id}",
            device_id=device_id,
        )
    return verification_out(context, v)


@router.post(HEARTBEAT, status_code=204, response_class=Response)
async def heartbeat(body: HeartbeatIn, request: Request) -> Response:
    """The kiosk's health, shown on the staff's kiosk page; the last one is kept."""
    context = context_of(request)
    await context.run_db(
        context.devices.record_health, current_device(request), body.status, dict(body.detail)
    )
    return Response(status_code=204)


@router.post(STAFF_CALLS, status_code=204, response_class=Response)
async def staff_call(body: StaffCallIn, request: Request) -> Response:
    """A kiosk's screen told the patient staff were called (``open``), or the kiosk went back
    to idle (``cleared``): shown in the staff queue at once. Sending the same report again
    changes nothing."""
    context = context_of(request)
    calls = StaffCalls(context.db, context.events, context.clock)
    await context.run_db(
        calls.report,
        current_device(request),
        body.key,
        state=body.state,
        visit=body.visit,
        reason=body.reason,
        notice=body.notice,
        verification_id=body.verification_id,
        late=body.late,
    )
    return Response(status_code=204)


def create_kiosk_app(
    context: ClinicContext,
    *,
    extra_routers: Sequence[APIRouter] = (),
) -> ASGIApp:
    """The kiosk API behind its device gate; ``extra_routers`` mount under ``/api/v1`` too."""
    app = FastAPI(
        title="Onshi Kiosk clinic server - kiosk API",
        version="1",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.clinic = context
    install_json_errors(app)
    app.include_router(router, prefix=API_PREFIX)
    for extra in extra_routers:
        app.include_router(extra, prefix=API_PREFIX)
    return DeviceGate(app, context)
