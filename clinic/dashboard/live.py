"""Live updates of the list: ``/events``, server-sent events, so the page never polls.

Each new or changed verification goes out as one ``verification`` event carrying its list row
(no patient data). Every ``kiosks_check_s`` seconds the stream also looks at the kiosks'
health (``clinic.devices``): a ``kiosks`` event carries the kiosks to flag when the stream
opens and again whenever they change - one falls silent, reports a fault, or is well again -
and the page updates the badge in its menu. Between events a keep-alive comment every
``heartbeat_s`` seconds also re-checks the session: when it ended, the stream says
``logout`` and ends. The stream ends too when the server stops. A ``queue`` event carries how
many items wait for staff (``clinic.dashboard.waiting``) when the stream opens and after every
change of a verification or a staff call: the badge, the page title and the chime follow it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from clinic import i18n
from clinic.dashboard.login import Sessions
from clinic.dashboard.site import Site
from clinic.staff import StaffSession

SSE_HEARTBEAT_S = 15.0
#: How often an event stream looks for kiosks that fell silent or recovered.
KIOSKS_CHECK_S = 5.0


class LiveEvents:
    def __init__(self, site: Site, sessions: Sessions) -> None:
        self.site = site
        self.sessions = sessions
        #: seconds between keep-alive comments (and session re-checks) on event streams
        self.heartbeat_s = SSE_HEARTBEAT_S
        #: seconds between looks at the kiosks' health on event streams
        self.kiosks_check_s = KIOSKS_CHECK_S

    async def events(self, request: Request, session: StaffSession) -> Response:
        lang = self.site.lang(request)
        context = self.site.context

        async def stream() -> AsyncIterator[str]:
            yield "retry: 2000\n\n"
            with context.events.subscribe() as notices:
                next_check = time.monotonic() + self.heartbeat_s
                flagged: list[str] | None = None  # sent first thing: the page may be older
                count = await self.site.waiting()
                if count is not None:
                    yield f"event: queue\ndata: {json.dumps({'count': count})}\n\n"
                next_kiosks = time.monotonic()
                while True:
                    timeout = max(0.05, min(next_check, next_kiosks) - time.monotonic())
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
                                self.site.row(v, lang) | {"day": v.day}, ensure_ascii=False
                            )
                            yield f"event: verification\ndata: {data}\n\n"
                    if event.get("type") in ("verification", "staff_call"):
                        count = await self.site.waiting()
                        if count is not None:
                            yield f"event: queue\ndata: {json.dumps({'count': count})}\n\n"
                    if time.monotonic() >= next_kiosks:
                        now_flagged = await self.site.unwell()
                        if now_flagged is not None and now_flagged != flagged:
                            flagged = now_flagged
                            data = json.dumps(
                                {
                                    "devices": flagged,
                                    "label": i18n.t("kiosks.flagged", lang),
                                    "title": i18n.t("kiosks.badge", lang),
                                },
                                ensure_ascii=False,
                            )
                            yield f"event: kiosks\ndata: {data}\n\n"
                        next_kiosks = time.monotonic() + self.kiosks_check_s
                    if time.monotonic() >= next_check:
                        # the session may have ended meanwhile: then the stream ends too
                        if await self.sessions.session_of(request) is None:
                            yield "event: logout\ndata: {}\n\n"
                            return
                        yield ": keep-alive\n\n"
                        next_check = time.monotonic() + self.heartbeat_s

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    def routes(self) -> list[Route]:
        return [Route("/events", self.sessions.guarded(self.events), methods=["GET"])]
