"""The dashboard's pages: today's list, a verification's detail, the staff queue, kiosks, log.

Only the detail page shows a patient's record, and each view of it is written to the access
log; the list and the queue show none. Errors of the eligibility service (no such
verification, already decided) become the error page in ``clinic.dashboard.app``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from clinic import i18n
from clinic.button import ButtonConfirmation
from clinic.dashboard.desk import Desk
from clinic.dashboard.login import Sessions
from clinic.dashboard.outage import detail_extras, manual_of
from clinic.dashboard.site import DAY, VERIFICATION_ID, Site, local_path
from clinic.devices import DeviceHealth, judge_health
from clinic.ingest import KioskOutbox
from clinic.outcomes import VALIDITY_LABELS
from clinic.staff import StaffSession
from contract.heartbeat import KioskHealth

#: A kiosk that never sent a heartbeat shows as silent when not heard from for this long
#: (one that did is silent after three of its heartbeat intervals: ``clinic.devices``).
KIOSK_SILENT_S = 120.0


class Pages:
    def __init__(self, site: Site, sessions: Sessions) -> None:
        self.site = site
        self.sessions = sessions
        self.context = site.context
        self.desk = Desk(site, sessions)

    async def index(self, request: Request, session: StaffSession) -> Response:
        site = self.site
        day = request.query_params.get("day") or site.today()
        if not DAY.match(day):
            day = site.today()
        verifications = await self.context.run(self.context.service.of_day, day)
        manual = await self.context.run(manual_of(self.context).of_day, day)
        lang = site.lang(request)
        labels = {
            "results": {k: i18n.pick(v, lang) for k, v in i18n.RESULT_LABELS.items()},
            "status": {
                s: i18n.t(f"status.{s}", lang)
                for s in ("done", "awaiting_staff", "needs_staff", "handled")
            },
            "modes": {m: i18n.t(f"mode.{m}", lang) for m in ("pin", "visual")},
            "open": i18n.t("action.open", lang),
        }
        return site.render(
            request,
            "index.html",
            session,
            day=day,
            is_today=day == site.today(),
            rows=[site.row(v, lang) for v in verifications],
            labels_json=json.dumps(labels, ensure_ascii=False),
            manual=manual,
            rechecks=sum(m.recheck_state == "waiting" for m in manual.values()),
        )

    async def detail(self, request: Request, session: StaffSession) -> Response:
        site = self.site
        verification_id = request.path_params["verification_id"]
        if not VERIFICATION_ID.match(verification_id):
            return site.error_page(request, session, 404, "error.not_found")
        v = await self.context.run(self.context.service.get, verification_id)
        if v is None:
            return site.error_page(request, session, 404, "error.not_found")
        lang = site.lang(request)
        extras = await self.context.run(detail_extras, self.context, v, lang)
        if v.records or extras["manual"] is not None:  # both are personal data
            await self.context.run(self.context.access_log.record, session.username, "view", [v.id])
        views = (
            await self.context.run(self.context.access_log.for_verification, v.id)
            if session.is_admin
            else []
        )
        tz = self.context.service.tz
        button = self.context.button
        confirmation = (
            await self.context.run(button.confirmation_of, v.id) if button is not None else None
        )
        calls = await self.context.run(self.desk.calls.for_verification, v.id)
        return site.render(
            request,
            "detail.html",
            session,
            v=v,
            calls=[{"visit": c.visit_label, "notice_code": c.notice_code} for c in calls],
            button=self._confirmation(confirmation, lang) if confirmation is not None else None,
            row=site.row(v, lang),
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
            **extras,
        )

    async def queue(self, request: Request, session: StaffSession) -> Response:
        """What waits for staff (``clinic.dashboard.desk``): visual checks pinned on top."""
        values = await self.desk.queue_values(request)
        button = self.context.button
        confirmations = await self.context.run(button.recent) if button is not None else []
        lang = self.site.lang(request)
        return self.site.render(
            request,
            "queue.html",
            session,
            **values,
            confirmations=[self._confirmation(c, lang) for c in confirmations],
        )

    def _confirmation(self, c: ButtonConfirmation, lang: i18n.Lang) -> dict[str, object]:
        """One button confirmation as the queue and the detail page show it."""
        tz = self.context.service.tz

        def at(moment: float) -> str:
            return dt.datetime.fromtimestamp(moment, tz).strftime("%Y-%m-%d %H:%M:%S")

        return {
            **self.site.row(c.verification, lang),
            "device_id": c.device_id,
            "confirmed_at": at(c.at),
            "until": at(c.revocable_until),
            "revocable": c.revoked_at is None and self.context.clock() <= c.revocable_until,
            "revoked": c.revoked_at is not None,
            "revoked_by": c.revoked_by or "",
            "revoked_at": at(c.revoked_at) if c.revoked_at is not None else "",
        }

    async def revoke(
        self, request: Request, session: StaffSession, form: dict[str, str]
    ) -> Response:
        verification_id = request.path_params["verification_id"]
        button = self.context.button
        if button is None or not VERIFICATION_ID.match(verification_id):
            return self.site.error_page(request, session, 404, "error.not_found")
        await self.context.run(button.revoke, verification_id, by=session.username)
        return RedirectResponse(local_path(form.get("next"), "/queue"), 303)

    async def clear_alarm(
        self, request: Request, session: StaffSession, form: dict[str, str]
    ) -> Response:
        alarm_id = request.path_params["alarm_id"]
        button = self.context.button
        if button is None or not VERIFICATION_ID.match(alarm_id):
            return self.site.error_page(request, session, 404, "error.not_found")
        await self.context.run(button.clear_alarm, alarm_id, by=session.username)
        return RedirectResponse(local_path(form.get("next"), "/"), 303)

    async def decide(
        self, request: Request, session: StaffSession, form: dict[str, str]
    ) -> Response:
        verification_id = request.path_params["verification_id"]
        decision = form.get("decision")
        if decision not in ("confirmed", "rejected") or not VERIFICATION_ID.match(verification_id):
            return self.site.error_page(request, session, 400, "error.not_found")
        await self.context.run(
            self.context.service.decide, verification_id, decision, by=session.username
        )
        await self.context.run(
            self.desk.calls.handle_for_verification, verification_id, by=session.username
        )
        target = local_path(form.get("next"), f"/verifications/{verification_id}")
        if target == "/queue":  # the outcome shows where staff are
            target = f"/queue?decided={verification_id}"
        return RedirectResponse(target, 303)

    async def handled(
        self, request: Request, session: StaffSession, form: dict[str, str]
    ) -> Response:
        verification_id = request.path_params["verification_id"]
        if not VERIFICATION_ID.match(verification_id):
            return self.site.error_page(request, session, 404, "error.not_found")
        await self.context.run(
            self.context.service.mark_handled, verification_id, by=session.username
        )
        await self.context.run(
            self.desk.calls.handle_for_verification, verification_id, by=session.username
        )
        return RedirectResponse(local_path(form.get("next"), "/queue"), 303)

    async def kiosks(self, request: Request, session: StaffSession) -> Response:
        devices = await self.context.run(self.context.devices.list)
        ingest = self.context.extras.get("ingest")  # clinic.ingest: each kiosk's log upload
        outboxes = await self.context.run(ingest.kiosks) if ingest is not None else {}
        tz = self.context.service.tz
        now = self.context.clock()
        lang = self.site.lang(request)

        def when(moment: float | None) -> str:
            if moment is None:
                return ""
            return dt.datetime.fromtimestamp(moment, tz).strftime("%Y-%m-%d %H:%M:%S")

        rows = []
        for d in devices:
            health = judge_health(d, now)
            if health.reported_at is not None:
                silent = health.silent
            else:
                silent = d["last_seen"] is None or now - d["last_seen"] > KIOSK_SILENT_S
            rows.append(
                {
                    "device_id": d["device_id"],
                    "last_seen": when(d["last_seen"]),
                    "silent": silent,
                    "never": d["last_seen"] is None,
                    "revoked": d["revoked"],
                    "valid_until": when(d["not_after"]),
                    "outbox": outbox_cell(outboxes.get(d["device_id"]), when, health.health),
                    **health_cells(health, when, lang),
                }
            )
        crls = [
            {
                "source": c.source,
                "this_update": when(c.this_update.timestamp()),
                "next_update": when(c.next_update.timestamp()) if c.next_update else "",
                "revoked": len(c.revoked),
            }
            for c in self.context.trust.crl_status()
        ]
        return self.site.render(
            request,
            "kiosks.html",
            session,
            devices=rows,
            crls=crls,
            crl_error=self.context.trust.last_error,
        )

    async def access_log_page(self, request: Request, session: StaffSession) -> Response:
        if not session.is_admin:
            return self.site.error_page(request, session, 403, "log.admin_only")
        log = self.context.access_log
        entries = await self.context.run(log.entries, limit=500)
        chain = await self.context.run(log.check_chain)
        tz = self.context.service.tz
        lang = self.site.lang(request)
        return self.site.render(
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

    def routes(self) -> list[Route]:
        g = self.sessions.guarded
        checked = self.sessions.checked_form
        return [
            Route("/", g(self.index), methods=["GET"]),
            Route("/queue", g(self.queue), methods=["GET"]),
            Route("/kiosks", g(self.kiosks), methods=["GET"]),
            Route("/access-log", g(self.access_log_page), methods=["GET"]),
            Route("/verifications/{verification_id}", g(self.detail), methods=["GET"]),
            Route(
                "/verifications/{verification_id}/decide",
                checked(self.decide),
                methods=["POST"],
            ),
            Route(
                "/verifications/{verification_id}/handled",
                checked(self.handled),
                methods=["POST"],
            ),
            Route(
                "/verifications/{verification_id}/revoke",
                checked(self.revoke),
                methods=["POST"],
            ),
            Route("/alarms/{alarm_id}/clear", checked(self.clear_alarm), methods=["POST"]),
            *self.desk.routes(),
        ]


def outbox_cell(
    view: KioskOutbox | None,
    when: Callable[[float | None], str],
    health: KioskHealth | None = None,
) -> dict[str, Any]:
    """What the dashboard's kiosk page shows of one kiosk's log upload: the backlog from its
    last heartbeat (else as its last upload reported it), and what the server saw arrive."""
    if view is None and health is None:
        return {"none": True, "alarm": False}
    backlog: object = "?"
    oldest = ""
    if health is not None and health.backlog_records is not None:
        backlog = health.backlog_records
        if health.oldest_age_s is not None and health.backlog_records:
            oldest = duration(health.oldest_age_s)
    elif view is not None and view.backlog_records is not None:
        backlog = view.backlog_records
    problems = []
    if view is not None:
        if view.conflicts:
            problems.append(f"conflicts {view.conflicts}")
        if view.forks:
            problems.append(f"forks {view.forks}")
        if view.undecryptable:
            problems.append(f"undecryptable {view.undecryptable}")
        if view.refused:
            problems.append(f"over quota, batches refused {view.refused}")
    gaps = view.gaps if view is not None else 0
    return {
        "none": False,
        "backlog": backlog,
        "oldest": oldest,
        "last_upload": when(view.last_upload) if view is not None else "",
        "gaps": gaps,
        "problems": ", ".join(problems),
        "alarm": bool(gaps or problems),
    }


def duration(seconds: float) -> str:
    """A span of time in its largest sensible unit: ``45 s``, ``12 min``, ``5 h``, ``3 d``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def health_cells(
    state: DeviceHealth, when: Callable[[float | None], str], lang: i18n.Lang
) -> dict[str, Any]:
    """The kiosks page's cells from one kiosk's last heartbeat (``contract.heartbeat``)."""
    health = state.health
    if health is None:
        return {"reported": "", "flagged": False, "health": "", "faults": "", "h": None}
    clock = {True: "kiosks.clock_synced", False: "kiosks.clock_unsynced", None: "kiosks.unknown"}
    return {
        "reported": when(state.reported_at),
        "flagged": state.flagged,
        "health": state.status or "",
        "faults": " ".join(state.faults),
        "h": {
            "reader": health.reader,
            "clock": i18n.t(clock[health.clock_synced], lang),
            "clock_bad": health.clock_synced is False,
            "temperature": (
                f"{health.temperature_c:.1f} °C" if health.temperature_c is not None else ""
            ),
            "version": health.version,
            "slots": health.slots or "",
            "last_update": health.last_update or "",
            "update_bad": health.update_rolled_back,
            "uptime": duration(health.uptime_s) if health.uptime_s is not None else "",
            "notice": health.notice or "",
            "notice_at": when(health.notice_at),
        },
    }
