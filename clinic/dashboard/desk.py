"""The staff desk: what waits for staff (the queue), how many (every page's badge), and the
notice codes the kiosks show.

The queue joins the two sources of ``clinic.dashboard.waiting``: a call that names a
verification in the queue is shown with it, as one item; the others are items of their own.
Visual checks waiting
come first, with why the PIN could not be used and what to do; then everything else, oldest
first. No patient data: the record is on the detail page only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from clinic import i18n
from clinic.dashboard.login import Sessions
from clinic.dashboard.site import VERIFICATION_ID, Site, local_path
from clinic.dashboard.waiting import Waiting, staff_calls, waiting
from clinic.staff_calls import StaffCall
from contract.notices import STAFF_GUIDE, Notice


def notice_of(number: int | None) -> Notice | None:
    if number is None:
        return None
    try:
        return Notice.by_number(number)
    except ValueError:
        return None


@dataclass(frozen=True)
class DeskWords:
    """The language-dependent parts of a queue item."""

    lang: i18n.Lang

    def reason(self, call: StaffCall) -> str:
        return i18n.t(f"queue.reason.{call.reason}", self.lang)

    def what_to_do(self, call: StaffCall) -> str:
        notice = notice_of(call.notice)
        if notice is None:
            return i18n.t("queue.card_left_do", self.lang) if call.reason == "card_left" else ""
        guide = STAFF_GUIDE[notice]
        return guide.staff_do_ja if self.lang == "ja" else guide.staff_do_en

    def why(self, call: StaffCall) -> str:
        notice = notice_of(call.notice)
        if notice is None:
            return self.reason(call)
        guide = STAFF_GUIDE[notice]
        return guide.patient_saw_ja if self.lang == "ja" else guide.patient_saw_en


def call_cells(call: StaffCall, words: DeskWords) -> dict[str, Any]:
    """What a queue item shows of a staff call."""
    return {
        "call_id": call.id,
        "visit": call.visit_label,
        "notice_code": call.notice_code,
        "reason_label": words.reason(call),
        "why": words.why(call),
        "what_to_do": words.what_to_do(call),
        "late": call.late,
    }


def queue_items(site: Site, found: Waiting, lang: i18n.Lang) -> list[dict[str, Any]]:
    """The queue's items: visual checks waiting first, then the rest, oldest first."""
    verifications, calls = found
    words = DeskWords(lang)
    tz = site.context.service.tz
    by_verification: dict[str, StaffCall] = {}
    for call in calls:
        if call.verification_id is not None:
            by_verification.setdefault(call.verification_id, call)
    items: list[dict[str, Any]] = []
    for v in verifications:
        linked = by_verification.get(v.id)
        items.append(
            {
                **site.row(v, lang),
                "kind": "verification",
                "at": v.created_at,
                "reason": v.staff_reason_ja if lang == "ja" else v.staff_reason_en,
                "pinned": v.public_state == "awaiting_staff",
                **(call_cells(linked, words) if linked is not None else _no_call()),
            }
        )
    queued = {v.id for v in verifications}
    for call in calls:
        if call.verification_id in queued:
            continue
        items.append(
            {
                "kind": "call",
                "id": call.id,
                "at": call.raised_at,
                "time": dt.datetime.fromtimestamp(call.raised_at, tz).strftime("%H:%M:%S"),
                "device_id": call.device_id,
                "status": "needs_staff",
                "awaiting": False,
                "pinned": call.reason.startswith("visual_check"),
                "reason": words.reason(call),
                **call_cells(call, words),
            }
        )
    items.sort(key=lambda item: (not item["pinned"], item["at"]))
    return items


def _no_call() -> dict[str, Any]:
    return {
        "call_id": "",
        "visit": "",
        "notice_code": "",
        "reason_label": "",
        "why": "",
        "what_to_do": "",
        "late": False,
    }


class Desk:
    """The queue page's data, the badge's count, the notice-code page, handling a call."""

    def __init__(self, site: Site, sessions: Sessions) -> None:
        self.site = site
        self.sessions = sessions
        self.context = site.context
        self.calls = staff_calls(self.context)

    async def queue_values(self, request: Request) -> dict[str, Any]:
        """The queue page's items, and the outcome of a visual check staff just decided."""
        lang = self.site.lang(request)
        found = await self.context.run(waiting, self.context)
        decided = None
        decided_id = request.query_params.get("decided", "")
        if VERIFICATION_ID.match(decided_id):
            v = await self.context.run(self.context.service.get, decided_id)
            if v is not None and v.decided_by is not None:
                decided = self.site.row(v, lang)
        return {"items": queue_items(self.site, found, lang), "decided": decided}

    async def notices(self, request: Request, session: Any) -> Response:
        lang = self.site.lang(request)
        rows = []
        for notice in Notice:
            guide = STAFF_GUIDE[notice]
            rows.append(
                {
                    "code": notice.code,
                    "name": notice.name.lower(),
                    "saw": guide.patient_saw_ja if lang == "ja" else guide.patient_saw_en,
                    "saw_ja": guide.patient_saw_ja,
                    "do": guide.staff_do_ja if lang == "ja" else guide.staff_do_en,
                    "amber": notice.needs_staff,
                }
            )
        return self.site.render(request, "notices.html", session, notices=rows)

    async def handle_call(self, request: Request, session: Any, form: dict[str, str]) -> Response:
        call_id = request.path_params["call_id"]
        if not VERIFICATION_ID.match(call_id):
            return self.site.error_page(request, session, 404, "error.not_found")
        call = await self.context.run(self.calls.handle, call_id, by=session.username)
        if call.verification_id is not None:
            v = await self.context.run(self.context.service.get, call.verification_id)
            if v is not None and v.public_state == "done" and v.needs_staff and not v.handled_at:
                await self.context.run(self.context.service.mark_handled, v.id, by=session.username)
        return RedirectResponse(local_path(form.get("next"), "/queue"), 303)

    def routes(self) -> list[Route]:
        return [
            Route("/notices", self.sessions.guarded(self.notices), methods=["GET"]),
            Route(
                "/calls/{call_id}/handled",
                self.sessions.checked_form(self.handle_call),
                methods=["POST"],
            ),
        ]
