"""The staff dashboard: today's checks, details, the staff queue, kiosks, exports, access log.

Served on its own TLS listener without client certificates (staff use ordinary browsers); every
page but the login form needs a session. Pages are rendered on the server (Jinja2 with
autoescaping); new and changed rows arrive by server-sent events (``/events``), so the page
never polls. Forms carry the session's CSRF token; cookies are ``Secure``, ``HttpOnly`` and
``SameSite=Strict``; a strict Content-Security-Policy allows only the server's own scripts.
Each view of a patient's record (detail page, export) is written to the access log.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clinic import i18n
from clinic.context import ClinicContext
from clinic.errors import Conflict, NotFound
from clinic.i18n import Lang
from clinic.ingest import outbox_cell
from clinic.national import RECORD_FIELDS
from clinic.outcomes import VALIDITY_LABELS
from clinic.service import Verification
from clinic.staff import StaffSession, csrf_ok

SESSION_COOKIE = "__Host-onshi-session"
LOGIN_CSRF_COOKIE = "__Host-onshi-login"
LANG_COOKIE = "onshi-lang"
MAX_FORM_BYTES = 16 * 1024
SSE_HEARTBEAT_S = 15.0
KIOSK_SILENT_S = 120.0

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ID = re.compile(r"^[0-9a-f]{32}$")

#: Routes reachable without a session (everything else refuses: see the tests).
PUBLIC_PATHS = frozenset({"/login", "/static/{name}", "/lang"})

Handler = Callable[[Request], Awaitable[Response]]


# --- templates ---------------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("clinic", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        RECORD_FIELDS=RECORD_FIELDS,
        FIELD_LABELS=i18n.FIELD_LABELS,
        pick=i18n.pick,
        format_date=i18n.format_date,
        format_ratio=i18n.format_ratio,
        format_value=i18n.format_value,
    )
    return env


_STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


def _static_files() -> dict[str, tuple[bytes, str]]:
    files: dict[str, tuple[bytes, str]] = {}
    for entry in resources.files("clinic").joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if suffix in _STATIC_TYPES:
            files[entry.name] = (entry.read_bytes(), _STATIC_TYPES[suffix])
    return files


# --- security headers --------------------------------------------------------------------------


class SecurityHeaders:
    """ASGI middleware adding the same protective headers to every answer."""

    HEADERS = (
        (
            b"content-security-policy",
            b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
            b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
        (b"strict-transport-security", b"max-age=31536000"),
        (b"cross-origin-opener-policy", b"same-origin"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers.extend(h for h in self.HEADERS if h[0] not in names)
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# --- the dashboard -----------------------------------------------------------------------------


class Dashboard:
    def __init__(self, context: ClinicContext) -> None:
        self.context = context
        self.env = _environment()
        self.static = _static_files()
        #: seconds between keep-alive comments (and session re-checks) on event streams
        self.sse_heartbeat_s = SSE_HEARTBEAT_S

    # -- plumbing --

    def lang(self, request: Request) -> Lang:
        return "en" if request.cookies.get(LANG_COOKIE) == "en" else "ja"

    def render(
        self,
        request: Request,
        template: str,
        session: StaffSession | None,
        status: int = 200,
        **values: Any,
    ) -> HTMLResponse:
        lang = self.lang(request)
        html = self.env.get_template(template).render(
            lang=lang,
            t=lambda key, **fmt: i18n.t(key, lang).format(**fmt) if fmt else i18n.t(key, lang),
            session=session,
            path=request.url.path,
            **values,
        )
        return HTMLResponse(html, status_code=status)

    async def session_of(self, request: Request) -> StaffSession | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        return await self.context.run(self.context.staff.session, token)

    async def form(self, request: Request) -> dict[str, str] | None:
        """The urlencoded form of a POST (single values), or None when too large/wrong."""
        if request.headers.get("content-type", "").split(";")[0].strip() != (
            "application/x-www-form-urlencoded"
        ):
            return None
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return None
        try:
            parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
        except (UnicodeDecodeError, ValueError):
            return None
        return {k: v[0] for k, v in parsed.items()}

    def guarded(self, handler: Callable[[Request, StaffSession], Awaitable[Response]]) -> Handler:
        """Pages that need a session: GET without one goes to the login form; others get 401."""

        async def endpoint(request: Request) -> Response:
            session = await self.session_of(request)
            if session is None:
                if request.method == "GET" and request.url.path != "/events":
                    target = quote(request.url.path, safe="/")
                    return RedirectResponse(f"/login?next={target}", status_code=303)
                return PlainTextResponse("login required", status_code=401)
            return await handler(request, session)

        return endpoint

    def checked_form(
        self, handler: Callable[[Request, StaffSession, dict[str, str]], Awaitable[Response]]
    ) -> Handler:
        """State-changing POSTs: a session and its CSRF token."""

        async def with_session(request: Request, session: StaffSession) -> Response:
            form = await self.form(request)
            if form is None or not csrf_ok(session, form.get("csrf")):
                return self.render(request, "error.html", session, 403, message_key="error.csrf")
            return await handler(request, session, form)

        return self.guarded(with_session)

    def today(self) -> str:
        return self.context.service.day_of(self.context.clock())

    def row(self, v: Verification, lang: Lang) -> dict[str, Any]:
        """One list row (no patient data: the record is shown, and logged, in the detail)."""
        tz = self.context.service.tz
        if v.public_state == "awaiting_staff":
            status = "awaiting_staff"
        elif v.needs_staff and v.handled_at is None:
            status = "needs_staff"
        elif v.needs_staff:
            status = "handled"
        else:
            status = "done"
        return {
            "id": v.id,
            "time": dt.datetime.fromtimestamp(v.created_at, tz).strftime("%H:%M:%S"),
            "device_id": v.device_id,
            "mode": i18n.t(f"mode.{v.mode}", lang),
            "result": i18n.pick(i18n.RESULT_LABELS.get(v.reason_code), lang, v.reason_code),
            "reason_code": v.reason_code,
            "status": status,
            "status_label": i18n.t(f"status.{status}", lang),
            "awaiting": v.public_state == "awaiting_staff",
        }

    # -- login --

    async def login_form(self, request: Request) -> Response:
        token = secrets.token_urlsafe(24)
        response = self.render(
            request,
            "login.html",
            None,
            login_csrf=token,
            failed=request.query_params.get("failed") == "1",
            next=_local_path(request.query_params.get("next")),
        )
        response.set_cookie(
            LOGIN_CSRF_COOKIE, token, secure=True, httponly=True, samesite="strict", path="/"
        )
        return response

    async def login(self, request: Request) -> Response:
        form = await self.form(request)
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
        if form is None or not cookie or not secrets.compare_digest(cookie, form.get("csrf", "")):
            return self.render(request, "error.html", None, 403, message_key="error.csrf")
        username = form.get("username", "")[:64]
        password = form.get("password", "")[:1024]
        staff = self.context.staff
        if not await self.context.run(staff.authenticate, username, password):
            return RedirectResponse("/login?failed=1", status_code=303)
        token, _ = await self.context.run(staff.open_session, username)
        response = RedirectResponse(_local_path(form.get("next")), status_code=303)
        response.set_cookie(
            SESSION_COOKIE, token, secure=True, httponly=True, samesite="strict", path="/"
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/", secure=True, httponly=True)
        return response

    async def logout(
        self, request: Request, session: StaffSession, form: dict[str, str]
    ) -> Response:
        await self.context.run(self.context.staff.close_session, session.token_hash)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True)
        return response

    async def set_lang(self, request: Request) -> Response:
        lang = "en" if request.query_params.get("to") == "en" else "ja"
        response = RedirectResponse(_local_path(request.query_params.get("next")), 303)
        response.set_cookie(
            LANG_COOKIE, lang, secure=True, httponly=True, samesite="strict", path="/"
        )
        return response

    # -- pages --

    async def index(self, request: Request, session: StaffSession) -> Response:
        day = request.query_params.get("day") or self.today()
        if not _DAY.match(day):
            day = self.today()
        verifications = await self.context.run(self.context.service.of_day, day)
        lang = self.lang(request)
        labels = {
            "results": {k: i18n.pick(v, lang) for k, v in i18n.RESULT_LABELS.items()},
            "status": {
                s: i18n.t(f"status.{s}", lang)
                for s in ("done", "awaiting_staff", "needs_staff", "handled")
            },
            "modes": {m: i18n.t(f"mode.{m}", lang) for m in ("pin", "visual")},
            "open": i18n.t("action.open", lang),
        }
        return self.render(
            request,
            "index.html",
            session,
            day=day,
            is_today=day == self.today(),
            rows=[self.row(v, lang) for v in verifications],
            labels_json=json.dumps(labels, ensure_ascii=False),
        )

    async def detail(self, request: Request, session: StaffSession) -> Response:
        verification_id = request.path_params["verification_id"]
        if not _ID.match(verification_id):
            return self.render(request, "error.html", session, 404, message_key="error.not_found")
        v = await self.context.run(self.context.service.get, verification_id)
        if v is None:
            return self.render(request, "error.html", session, 404, message_key="error.not_found")
        if v.records:
            await self.context.run(self.context.access_log.record, session.username, "view", [v.id])
        views = (
            await self.context.run(self.context.access_log.for_verification, v.id)
            if session.is_admin
            else []
        )
        lang = self.lang(request)
        tz = self.context.service.tz
        return self.render(
            request,
            "detail.html",
            session,
            v=v,
            row=self.row(v, lang),
            validity_label=i18n.pick(VALIDITY_LABELS.get(v.validity_code or 0), lang),
            staff_reason=v.staff_reason_ja if lang == "ja" else v.staff_reason_en,
            created=dt.datetime.fromtimestamp(v.created_at, tz).strftime("%Y-%m-%d %H:%M:%S"),
            cert_expiry=(
                dt.datetime.fromtimestamp(v.cert_not_after, tz).strftime("%Y-%m-%d")
                if v.cert_not_after
                else ""
            ),
            sex=i18n.SEX,
            personal_family=i18n.PERSONAL_FAMILY,
            views=[
                {
                    "at": dt.datetime.fromtimestamp(e["at"], tz).strftime("%Y-%m-%d %H:%M:%S"),
                    "username": e["username"],
                    "action": i18n.pick(i18n.ACTION_LABELS.get(e["action"]), lang, e["action"]),
                }
                for e in views
            ],
        )

    async def queue(self, request: Request, session: StaffSession) -> Response:
        items = await self.context.run(self.context.service.staff_queue)
        lang = self.lang(request)
        return self.render(
            request,
            "queue.html",
            session,
            items=[
                {
                    **self.row(v, lang),
                    "reason": v.staff_reason_ja if lang == "ja" else v.staff_reason_en,
                }
                for v in items
            ],
        )

    async def decide(
        self, request: Request, session: StaffSession, form: dict[str, str]
    ) -> Response:
        verification_id = request.path_params["verification_id"]
        decision = form.get("decision")
        if decision not in ("confirmed", "rejected") or not _ID.match(verification_id):
            return self.render(request, "error.html", session, 400, message_key="error.not_found")
        try:
            await self.context.run(
                self.context.service.decide, verification_id, decision, by=session.username
            )
        except NotFound:
            return self.render(request, "error.html", session, 404, message_key="error.not_found")
        except Conflict:
            return self.render(request, "error.html", session, 409, message_key="error.conflict")
        return RedirectResponse(
            _local_path(form.get("next"), f"/verifications/{verification_id}"), 303
        )

    async def handled(
        self, request: Request, session: StaffSession, form: dict[str, str]
    ) -> Response:
        verification_id = request.path_params["verification_id"]
        if not _ID.match(verification_id):
            return self.render(request, "error.html", session, 404, message_key="error.not_found")
        try:
            await self.context.run(
                self.context.service.mark_handled, verification_id, by=session.username
            )
        except NotFound:
            return self.render(request, "error.html", session, 404, message_key="error.not_found")
        except Conflict:
            return self.render(request, "error.html", session, 409, message_key="error.conflict")
        return RedirectResponse(_local_path(form.get("next"), "/queue"), 303)

    async def kiosks(self, request: Request, session: StaffSession) -> Response:
        devices = await self.context.run(self.context.devices.list)
        ingest = self.context.extras.get("ingest")  # clinic.ingest: each kiosk's log upload
        outboxes = await self.context.run(ingest.kiosks) if ingest is not None else {}
        tz = self.context.service.tz
        now = self.context.clock()

        def when(moment: float | None) -> str:
            if moment is None:
                return ""
            return dt.datetime.fromtimestamp(moment, tz).strftime("%Y-%m-%d %H:%M:%S")

        rows = [
            {
                "device_id": d["device_id"],
                "last_seen": when(d["last_seen"]),
                "silent": d["last_seen"] is None or now - d["last_seen"] > KIOSK_SILENT_S,
                "never": d["last_seen"] is None,
                "health": d["health_status"] or "",
                "health_detail": ", ".join(f"{k}={v}" for k, v in d["health_detail"].items()),
                "revoked": d["revoked"],
                "valid_until": when(d["not_after"]),
                "outbox": outbox_cell(outboxes.get(d["device_id"]), when),
            }
            for d in devices
        ]
        crls = [
            {
                "source": c.source,
                "this_update": when(c.this_update.timestamp()),
                "next_update": when(c.next_update.timestamp()) if c.next_update else "",
                "revoked": len(c.revoked),
            }
            for c in self.context.trust.crl_status()
        ]
        return self.render(
            request,
            "kiosks.html",
            session,
            devices=rows,
            crls=crls,
            crl_error=self.context.trust.last_error,
        )

    async def access_log_page(self, request: Request, session: StaffSession) -> Response:
        if not session.is_admin:
            return self.render(request, "error.html", session, 403, message_key="log.admin_only")
        log = self.context.access_log
        entries = await self.context.run(log.entries, limit=500)
        chain = await self.context.run(log.check_chain)
        tz = self.context.service.tz
        lang = self.lang(request)
        return self.render(
            request,
            "access_log.html",
            session,
            chain=chain,
            entries=[
                {
                    "at": dt.datetime.fromtimestamp(e["at"], tz).strftime("%Y-%m-%d %H:%M:%S"),
                    "username": e["username"],
                    "action": i18n.pick(i18n.ACTION_LABELS.get(e["action"]), lang, e["action"]),
                    "verification_id": e["verification_id"] or "",
                }
                for e in entries
            ],
        )

    # -- exports --

    async def export(self, request: Request, session: StaffSession) -> Response:
        day = request.path_params["day"]
        kind = request.path_params["kind"]
        if not _DAY.match(day) or kind not in ("csv", "json"):
            return self.render(request, "error.html", session, 404, message_key="error.not_found")
        verifications = await self.context.run(self.context.service.of_day, day)
        verifications.sort(key=lambda v: (v.created_at, v.id))
        viewed = [v.id for v in verifications if v.records]
        if viewed:
            await self.context.run(
                self.context.access_log.record,
                session.username,
                f"export.{kind}",
                viewed,
                {"day": day},
            )
        filename = f"onshi-eligibility-{day}.{kind}"
        headers = {"content-disposition": f'attachment; filename="{filename}"'}
        if kind == "json":
            body = json.dumps(
                [self.export_item(v) for v in verifications], ensure_ascii=False, indent=1
            )
            return Response(body, media_type="application/json", headers=headers)
        return Response(
            self.export_csv(verifications), media_type="text/csv; charset=utf-8", headers=headers
        )

    def export_item(self, v: Verification) -> dict[str, Any]:
        return {
            "verification_id": v.id,
            "verified_at": self.context.service.iso(v.created_at),
            "device_id": v.device_id,
            "mode": v.mode,
            "state": v.public_state,
            "reason_code": v.reason_code,
            "validity_code": v.validity_code,
            "records": v.records or [],
        }

    def export_csv(self, verifications: list[Verification]) -> str:
        columns = export_columns(verifications)
        out = io.StringIO()
        out.write("\ufeff")  # spreadsheet software in Japan reads UTF-8 with the mark
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(
            [
                "verification_id",
                "verified_at",
                "device_id",
                "mode",
                "reason_code",
                "validity_code",
                *columns,
            ]
        )
        for v in verifications:
            head = [
                v.id,
                self.context.service.iso(v.created_at),
                v.device_id,
                v.mode,
                v.reason_code,
                "" if v.validity_code is None else str(v.validity_code),
            ]
            for record in v.records or [{}]:
                flat = flatten_record(record)
                writer.writerow([*head, *(_csv_safe(flat.get(c, "")) for c in columns)])
        return out.getvalue()

    # -- server-sent events --

    async def events(self, request: Request, session: StaffSession) -> Response:
        lang = self.lang(request)
        context = self.context

        async def stream() -> AsyncIterator[str]:
            yield "retry: 2000\n\n"
            with context.events.subscribe() as notices:
                next_check = time.monotonic() + self.sse_heartbeat_s
                while True:
                    timeout = max(0.05, next_check - time.monotonic())
                    try:
                        event = await asyncio.wait_for(notices.get(), timeout)
                    except TimeoutError:
                        event = {}
                    if event is None:  # the server is stopping
                        return
                    if event.get("type") == "verification":
                        v = await context.run(context.service.get, event["id"])
                        if v is not None:
                            data = json.dumps(
                                self.row(v, lang) | {"day": v.day}, ensure_ascii=False
                            )
                            yield f"event: verification\ndata: {data}\n\n"
                    if time.monotonic() >= next_check:
                        # the session may have ended meanwhile: then the stream ends too
                        if await self.session_of(request) is None:
                            yield "event: logout\ndata: {}\n\n"
                            return
                        yield ": keep-alive\n\n"
                        next_check = time.monotonic() + self.sse_heartbeat_s

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    async def static_file(self, request: Request) -> Response:
        found = self.static.get(request.path_params["name"])
        if found is None:
            return PlainTextResponse("not found", status_code=404)
        data, media_type = found
        return Response(data, media_type=media_type, headers={"cache-control": "max-age=300"})

    def app(self) -> ASGIApp:
        g = self.guarded
        routes = [
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/lang", self.set_lang, methods=["GET"]),
            Route("/static/{name}", self.static_file, methods=["GET"]),
            Route("/logout", self.checked_form(self.logout), methods=["POST"]),
            Route("/", g(self.index), methods=["GET"]),
            Route("/events", g(self.events), methods=["GET"]),
            Route("/queue", g(self.queue), methods=["GET"]),
            Route("/kiosks", g(self.kiosks), methods=["GET"]),
            Route("/access-log", g(self.access_log_page), methods=["GET"]),
            Route("/verifications/{verification_id}", g(self.detail), methods=["GET"]),
            Route(
                "/verifications/{verification_id}/decide",
                self.checked_form(self.decide),
                methods=["POST"],
            ),
            Route(
                "/verifications/{verification_id}/handled",
                self.checked_form(self.handled),
                methods=["POST"],
            ),
            Route("/export/{day}.{kind}", g(self.export), methods=["GET"]),
        ]
        app = Starlette(routes=routes)
        app.state.clinic = self.context
        app.state.dashboard = self
        return SecurityHeaders(app)


def create_staff_app(context: ClinicContext) -> ASGIApp:
    return Dashboard(context).app()


# --- helpers -----------------------------------------------------------------------------------


def _local_path(value: str | None, default: str = "/") -> str:
    """Only same-site absolute paths as redirect targets."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if any(ord(c) < 0x20 for c in value):
        return default
    return value


def flatten_record(record: dict[str, Any]) -> dict[str, str]:
    """A record as flat columns: nested objects as ``Parent.Child``, lists joined by ``;``."""
    flat: dict[str, str] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            for sub, sub_value in value.items():
                flat[f"{key}.{sub}"] = "" if sub_value is None else str(sub_value)
        elif isinstance(value, list):
            parts = []
            for item in value:
                if isinstance(item, dict):
                    parts.append(":".join("" if x is None else str(x) for x in item.values()))
                else:
                    parts.append(str(item))
            flat[key] = ";".join(parts)
        else:
            flat[key] = "" if value is None else str(value)
    return flat


def export_columns(verifications: list[Verification]) -> list[str]:
    """The record columns: DOMAIN.md's order, nested fields as they appear in the records."""
    nested: dict[str, list[str]] = {}
    for v in verifications:
        for record in v.records or []:
            for key, value in record.items():
                if isinstance(value, dict):
                    known = nested.setdefault(key, [])
                    known.extend(sub for sub in value if sub not in known)
    columns: list[str] = []
    for name in RECORD_FIELDS:
        if name in nested:
            columns += [f"{name}.{sub}" for sub in nested[name]]
        else:
            columns.append(name)
    return columns


def _csv_safe(value: str) -> str:
    """Keep spreadsheet software from running a cell as a formula."""
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value
