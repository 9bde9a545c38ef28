"""What every dashboard page shares: templates, language, form parsing, rendering, list rows."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import parse_qs

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from clinic import i18n
from clinic.context import ClinicContext
from clinic.dashboard.receipt_notice import receipt_notice
from clinic.dashboard.waiting import count_waiting, waiting
from clinic.eligibility import Verification
from clinic.errors import StorageError
from clinic.i18n import Lang
from clinic.national.interface import RECORD_FIELDS
from clinic.receipt_files.labels import code_label
from clinic.staff import StaffSession

LANG_COOKIE = "onshi-lang"
MAX_FORM_BYTES = 16 * 1024

#: A day in a path or query (``2026-11-24``) and a verification id (32 hex digits).
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
VERIFICATION_ID = re.compile(r"^[0-9a-f]{32}$")


def template_environment() -> jinja2.Environment:
    """The page templates (``clinic/templates``) with the formatting helpers they use."""
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
        code_label=code_label,
    )
    return env


class Site:
    """The clinic and the templates, and how a page is put together from them."""

    def __init__(self, context: ClinicContext) -> None:
        self.context = context
        self.env = template_environment()

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
            alarms=self.alarms(lang) if session is not None else [],
            unwell=getattr(request.state, "unwell", []) if session is not None else [],
            receipt_notice=receipt_notice(self.context, lang) if session is not None else None,
            waiting=getattr(request.state, "waiting", 0) if session is not None else 0,
            **values,
        )
        return HTMLResponse(html, status_code=status)

    def error_page(
        self, request: Request, session: StaffSession | None, status: int, message_key: str
    ) -> HTMLResponse:
        """The error page: one message in the page's language, with the status."""
        return self.render(request, "error.html", session, status, message_key=message_key)

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

    def alarms(self, lang: Lang) -> list[dict[str, str]]:
        """The open alarms every signed-in page shows in its banner (``clinic.button``)."""
        button = self.context.button
        if button is None:
            return []
        tz = self.context.service.tz
        return [
            {
                "id": a.id,
                "device_id": a.device_id,
                "text": i18n.t(f"alarm.{a.kind}", lang).format(
                    device=a.device_id,
                    limit=a.detail.get("limit", "?"),
                    count=a.count,
                    last=dt.datetime.fromtimestamp(a.last_at, tz).strftime("%Y-%m-%d %H:%M:%S"),
                ),
            }
            for a in button.open_alarms()
        ]

    async def unwell(self) -> list[str] | None:
        """The kiosks every signed-in page flags (silent, or reporting a fault), by id; None
        when the database cannot say now (the badge then waits for the next page)."""
        try:
            flagged = await self.context.run(self.context.devices.flagged)
        except StorageError:
            return None
        return [h.device_id for h in flagged]

    async def waiting(self) -> int | None:
        """How many queue items wait (every signed-in page's badge); None when the database
        cannot say now."""
        try:
            return count_waiting(await self.context.run(waiting, self.context))
        except StorageError:
            return None

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


def local_path(value: str | None, default: str = "/") -> str:
    """Only same-site absolute paths as redirect targets."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if any(ord(c) < 0x20 for c in value):
        return default
    return value
