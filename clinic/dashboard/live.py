"""Live updates of the list: ``/events``, server-sent events, so the page never polls.

Each new or changed verification goes out as one ``verification`` event carrying its list row
(no patient data). Between events a keep-alive comment every ``heartbeat_s`` seconds also
re-checks the session: when it ended, the stream says ``logout`` and ends. The stream ends
too when the server stops.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from clinic.dashboard.login import Sessions
from clinic.dashboard.site import Site
from clinic.staff import StaffSession

SSE_HEARTBEAT_S = 15.0


class LiveEvents:
    def __init__(self, site: Site, sessions: Sessions) -> None:
        self.site = site
        self.sessions = sessions
        #: seconds between keep-alive comments (and session re-checks) on event streams
        self.heartbeat_s = SSE_HEARTBEAT_S

    async def events(self, request: Request, session: StaffSession) -> Response:
        lang = self.site.lang(request)
        context = self.site.context

        async def stream() -> AsyncIterator[str]:
            yield "retry: 2000\n\n"
            with context.events.subscribe() as notices:
                next_check = time.monotonic() + self.heartbeat_s
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
                                self.site.row(v, lang) | {"day": v.day}, ensure_ascii=False
                            )
                            yield f"event: verification\ndata: {data}\n\n"
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
