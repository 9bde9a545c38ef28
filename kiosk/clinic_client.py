"""The kiosk's side of the clinic server's API (``/api/v1``).

``make_http_client`` builds the one ``httpx.Client`` a kiosk process uses to reach the clinic
server: mutual TLS with the clinic's server CA pinned (no system CAs), every request signed
with the device key (``contract.device_signing``), explicit timeouts and HTTP/1.1 keep-alive.

``ClinicClient`` speaks the eligibility API over such a client and translates failures at this
boundary into the kiosk's exception tree:

- ``ServerUnreachable`` (temporary): the request never completed - no connection, a TLS
  failure, a timeout, the connection dropped;
- ``ServerRejected``: an error status or an answer the kiosk cannot read; ``temporary`` is
  true for the statuses ``contract.api`` calls temporary (429, 503...), so the caller may
  try again later, after the server's ``Retry-After`` when it gave one.

Only calls that are safe to repeat are retried here: asking for a challenge (an unused nonce
simply expires), reading a result, and confirming (the server treats the same decision twice
as one). A verification is never retried: its nonce is single use, so the caller starts over
with a fresh challenge. An outbox batch is not retried here either: the uploader
(:mod:`kiosk.outbox.uploader`) backs off and sends the same records again itself; nor is a
heartbeat: the next one replaces it.

With several servers (``[server] urls``: instances of the server sharing one database, see
docs/scale-out.md) the client holds one connection pool per server and talks to one at a time.
When a request cannot reach it (refused, reset, timed out: ``ServerUnreachable``), the client
moves to the next server and sends the request there at once, each other server once per call
- including a verification with the same nonce and card signature: challenges live in the
shared database, so the card never signs (nor spends a PIN try) again, and the nonce, being
single use, makes sure the check is recorded at most once. A server that answered, even with
an error, is not left: the others share its database and would answer the same. The client
stays with the server that answers until that one fails.

Both kiosk processes, the appliance and the uploader, open their client with
:func:`open_clinic_client` from the ``[server]`` and ``[device]`` settings
(:mod:`kiosk.server_config`): one HTTP seam, the configured timeouts for both.

This module imports nothing from the server: the kiosk does not install the ``clinic`` extra.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import ssl
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx

from contract import api, certificate_expiry
from contract.challenge import Mode
from contract.device_signing import DeviceIdentity
from contract.errors import ConfigError
from contract.outbox_record import Batch, BatchAck
from kiosk.errors import ServerRejected, ServerUnreachable
from kiosk.server_config import DeviceConfig, ServerConfig

#: Connecting and reading are bounded; a long-poll adds its wait to the read timeout.
DEFAULT_TIMEOUT = httpx.Timeout(connect=3.0, read=10.0, write=5.0, pool=5.0)

T = TypeVar("T")
State = Literal["done", "awaiting_staff"]
Decision = Literal["confirmed", "rejected"]


class DeviceRequestAuth(httpx.Auth):
    """httpx authentication that signs every request with the device key.

    Each request - each retry too - gets a fresh request id inside what it signs: the server
    accepts a request id once, so a captured request cannot be sent again.
    """

    requires_request_body = True

    def __init__(self, identity: DeviceIdentity, clock: Callable[[], float]) -> None:
        """``clock`` returns wall-clock seconds: ``time.time`` in production."""
        self._identity = identity
        self._clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        target = request.url.raw_path.decode("ascii")
        request.headers.update(
            self._identity.sign_request(request.method, target, request.content, now=self._clock())
        )
        yield request


def make_http_client(
    base_url: str,
    *,
    ca_file: Path,
    identity: DeviceIdentity,
    client_cert_file: Path,
    client_key_file: Path,
    timeout: httpx.Timeout | None = None,
    clock: Callable[[], float] = time.time,
) -> httpx.Client:
    """An HTTP client for the clinic server, authenticated as this kiosk.

    ``ca_file`` is the clinic's server CA (``server-ca.pem``): the only authority trusted.
    ``client_cert_file``/``client_key_file`` are the device certificate and key presented in
    the TLS handshake; ``identity`` (loaded from the same two files: the server refuses a
    request signed with another certificate than the connection's) signs each request.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(client_cert_file), str(client_key_file))
    return httpx.Client(
        base_url=base_url,
        verify=context,
        auth=DeviceRequestAuth(identity, clock),
        timeout=timeout or DEFAULT_TIMEOUT,
        http1=True,
        http2=False,
        limits=httpx.Limits(max_connections=4, max_keepalive_connections=2, keepalive_expiry=30),
        headers={"Accept": "application/json"},
        follow_redirects=False,
        trust_env=False,
    )


def open_clinic_client(
    server: ServerConfig, device: DeviceConfig, identity: DeviceIdentity, *, retries: int = 2
) -> ClinicClient:
    """The kiosk's client for the server ``[server]`` names, as the device ``[device]`` names,
    with the configured timeouts. TLS files that cannot be used are a ConfigError naming the
    settings."""
    for setting, path in (
        ("[server] ca", server.ca),
        ("[device] certificate", device.certificate),
        ("[device] key", device.key),
    ):
        if not path.is_file():
            raise ConfigError(f"{setting}: no such file {path}")
    try:
        clients = [
            make_http_client(
                url,
                ca_file=server.ca,
                identity=identity,
                client_cert_file=device.certificate,
                client_key_file=device.key,
                timeout=server.timeout,
            )
            for url in server.urls
        ]
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"[server] ca or [device]: cannot set up TLS: {exc}") from exc
    return ClinicClient(clients[0], retries=retries, others=clients[1:])


@dataclass(frozen=True)
class Challenge:
    """A fresh single-use nonce from the server, to be signed by the card."""

    nonce: bytes
    expires_at: dt.datetime


@dataclass(frozen=True)
class VerificationResult:
    """The server's answer about one eligibility check, as much as the kiosk needs."""

    verification_id: str
    state: State
    reason_code: str
    validity_code: int | None
    #: A message code the kiosk maps to its own text (``eligible``, ``see_staff.revoked``...).
    patient_message: str
    #: Plain text for staff (Japanese), and its English version.
    staff_reason: str
    staff_reason_en: str
    #: True when trying again later (with a fresh challenge) may give another answer.
    temporary: bool
    #: Copay ratio as the national system writes it ("030" = 30 %), for a valid record only.
    copay_ratio: str | None
    #: The user certificate's expiry (``YYYY-MM-DD``) when it is within three months either
    #: side (``contract.certificate_expiry``), for the result screen.
    certificate_expires: str | None = None

    @property
    def awaiting_staff(self) -> bool:
        return self.state == "awaiting_staff"

    @property
    def eligible(self) -> bool:
        return self.state == "done" and self.validity_code == 1

    @property
    def copay_percent(self) -> int | None:
        if self.copay_ratio is None or not self.copay_ratio.isdigit():
            return None
        return int(self.copay_ratio)


class ClinicClient:
    """The eligibility API, with failures translated into ``kiosk.errors``."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        retries: int = 2,
        backoff_s: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
        others: Sequence[httpx.Client] = (),
    ) -> None:
        """``http`` reaches the first server; ``others`` the next ones, in order."""
        self._servers = [http, *others]
        self._current = 0
        self._retries = retries
        self._backoff_s = backoff_s
        self._sleep = sleep

    @property
    def _http(self) -> httpx.Client:
        return self._servers[self._current]

    @property
    def server_url(self) -> str:
        """The server the client talks to now."""
        return str(self._http.base_url).rstrip("/")

    @property
    def timeout(self) -> httpx.Timeout:
        """The timeouts of every request (a long-poll adds its wait to the read timeout)."""
        return self._http.timeout

    def close(self) -> None:
        for http in self._servers:
            http.close()

    def __enter__(self) -> ClinicClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the API --

    def challenge(self) -> Challenge:
        """A fresh nonce; safe to retry (an unused nonce just expires)."""
        body = self._call("POST", api.CHALLENGES, json={}, retry=True)
        try:
            nonce = base64.b64decode(_field(body, "nonce", str), validate=True)
            expires_at = dt.datetime.fromisoformat(_field(body, "expires_at", str))
        except (binascii.Error, ValueError) as exc:
            raise ServerRejected(f"malformed challenge: {exc}") from None
        if not nonce:
            raise ServerRejected("empty nonce in the challenge")
        return Challenge(nonce, expires_at)

    def verify(
        self,
        nonce: bytes,
        mode: Mode,
        certificate_der: bytes,
        signature: bytes | None,
    ) -> VerificationResult:
        """Ask for the eligibility check; never retried (the nonce is single use)."""
        payload = {
            "nonce": base64.b64encode(nonce).decode("ascii"),
            "mode": mode,
            "certificate": base64.b64encode(certificate_der).decode("ascii"),
            "signature": None if signature is None else base64.b64encode(signature).decode(),
        }
        return _result(self._call("POST", api.VERIFICATIONS, json=payload, retry=False))

    def wait_for_result(self, verification_id: str, wait_s: float) -> VerificationResult:
        """The verification's state, waiting up to ``wait_s`` for staff to decide."""
        wait = max(0.0, min(wait_s, 25.0))
        timeout = self._http.timeout
        extended = httpx.Timeout(
            connect=timeout.connect,
            read=(timeout.read or 10.0) + wait,
            write=timeout.write,
            pool=timeout.pool,
        )
        body = self._call(
            "GET",
            api.verification_path(verification_id),
            params={"wait": f"{wait:g}"},
            retry=True,
            timeout=extended,
        )
        return _result(body)

    def confirm(self, verification_id: str, decision: Decision) -> VerificationResult:
        """Staff pressed the kiosk's physical button: confirm (or reject) a visual check."""
        body = self._call(
            "POST",
            api.confirm_path(verification_id),
            json={"decision": decision},
            retry=True,
        )
        return _result(body)

    def heartbeat(self, status: str, detail: Mapping[str, Any] | None = None) -> None:
        """Report the kiosk's health (``contract.heartbeat``) for the staff's kiosks page.

        Not retried: the next heartbeat is newer, and a retry would hold up the thread that
        sends them (and the kiosk's stop) while the server cannot be reached.
        """
        self._call(
            "POST",
            api.HEARTBEAT,
            json={"status": status, "detail": dict(detail or {})},
            retry=False,
        )

    def staff_call(self, report: Mapping[str, Any]) -> None:
        """Report a staff call opened or cleared (``POST /staff-calls``).

        Not retried here: the server worker keeps the report and sends it again until it
        arrives (the server takes the same report twice as once).
        """
        self._call("POST", api.STAFF_CALLS, json=dict(report), retry=False)

    def send_batch(self, batch: Batch) -> BatchAck:
        """Post sealed outbox records; the acknowledgement lists what the server committed.

        Never retried here (the uploader backs off, then sends the same records again; the
        server deduplicates). An acknowledgement the kiosk cannot read is a temporary
        refusal: the batch itself may be fine.
        """
        path = api.OUTBOX_BATCH
        response = self._failing_over(
            lambda: self._response(
                "POST",
                path,
                content=batch.to_json(),
                headers={"Content-Type": "application/json"},
            )
        )
        status = response.status_code
        if status != 200:
            raise ServerRejected(f"POST {path}: unexpected HTTP {status}", status)
        try:
            return BatchAck.from_json(response.json(), [r.seq for r in batch.records])
        except ValueError as exc:
            raise ServerRejected(
                f"POST {path}: malformed acknowledgement: {exc}", status, temporary=True
            ) from None

    # -- plumbing --

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        retry: bool,
        timeout: httpx.Timeout | None = None,
    ) -> dict[str, Any]:
        attempts = 1 + (self._retries if retry else 0)
        for attempt in range(attempts):
            try:
                return self._failing_over(
                    lambda: self._once(method, path, json=json, params=params, timeout=timeout)
                )
            except (ServerUnreachable, ServerRejected) as exc:
                if not exc.temporary or attempt + 1 >= attempts:
                    raise
                self._sleep(self._backoff_s * (2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _failing_over(self, send: Callable[[], T]) -> T:
        """``send()``; when its server cannot be reached, again on each other server once."""
        for _ in range(len(self._servers) - 1):
            try:
                return send()
            except ServerUnreachable:
                self._current = (self._current + 1) % len(self._servers)
        return send()

    def _once(
        self,
        method: str,
        path: str,
        *,
        json: Any,
        params: Mapping[str, str] | None,
        timeout: httpx.Timeout | None,
    ) -> dict[str, Any]:
        response = self._response(method, path, json=json, params=params, timeout=timeout)
        if response.status_code == 204:
            return {}
        try:
            body = response.json()
        except ValueError:
            raise ServerRejected(
                f"{method} {path}: the answer is not JSON", response.status_code
            ) from None
        if not isinstance(body, dict):
            raise ServerRejected(f"{method} {path}: the answer is not a JSON object")
        return body

    def _response(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        """One request under ``/api/v1``; a failure or an error status raised as ServerError.

        ``ServerUnreachable`` when it never completed; ``ServerRejected`` for an error status,
        temporary for the statuses ``contract.api`` calls temporary, with the server's
        ``Retry-After`` (``retry_after_s``) when it gave one.
        """
        extra: dict[str, Any] = {}
        if timeout is not None:
            extra["timeout"] = timeout
        try:
            response = self._http.request(
                method,
                api.API_PREFIX + path,
                json=json,
                content=content,
                headers=headers,
                params=params,
                **extra,
            )
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        except httpx.HTTPError as exc:  # e.g. a redirect loop, a broken URL
            raise ServerRejected(f"{method} {path}: {exc}") from exc
        if response.status_code >= 400:
            raise ServerRejected(
                f"{method} {path}: HTTP {response.status_code}: "
                f"{api.error_detail(response.content)}",
                response.status_code,
                temporary=api.is_temporary(response.status_code),
                retry_after_s=api.parse_retry_after(
                    response.headers.get("Retry-After"), now=time.time()
                ),
            )
        return response


def _field(body: Mapping[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ServerRejected(f"malformed answer: {name!r} is missing or not {kind.__name__}")
    return value


def _result(body: Mapping[str, Any]) -> VerificationResult:
    state = _field(body, "state", str)
    if state not in ("done", "awaiting_staff"):
        raise ServerRejected(f"malformed answer: unknown state {state!r}")
    validity = body.get("validity_code")
    if validity is not None and (
        not isinstance(validity, int) or isinstance(validity, bool) or not 1 <= validity <= 5
    ):
        raise ServerRejected(f"malformed answer: validity_code {validity!r}")
    record = body.get("record")
    copay: str | None = None
    if record is not None:
        if not isinstance(record, dict):
            raise ServerRejected("malformed answer: record is not an object")
        ratio = record.get("InsuredPartialContributionRatio")
        copay = ratio if isinstance(ratio, str) else None
    temporary = body.get("temporary", False)
    return VerificationResult(
        verification_id=_field(body, "verification_id", str),
        state=state,
        reason_code=_field(body, "reason_code", str),
        validity_code=validity,
        patient_message=_field(body, "patient_message", str),
        staff_reason=_field(body, "staff_reason", str),
        staff_reason_en=str(body.get("staff_reason_en", "")),
        temporary=bool(temporary),
        copay_ratio=copay,
        certificate_expires=_expiry(body.get(certificate_expiry.FIELD)),
    )


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _expiry(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _DATE.match(value):
        raise ServerRejected(f"malformed answer: certificate_expires {value!r}")
    return value
