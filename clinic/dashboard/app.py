"""The dashboard application: its parts, their routes, the error page, the protective headers.

Errors of the layers below the pages (no such verification, already decided, the database
busy...) are mapped once, by ``clinic.http_errors``, and shown as the error page with that
status (and ``Retry-After`` when trying again later may help).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from clinic.context import ClinicContext
from clinic.dashboard.export import Export
from clinic.dashboard.headers import SecurityHeaders
from clinic.dashboard.live import LiveEvents
from clinic.dashboard.login import Sessions
from clinic.dashboard.outage import Outage
from clinic.dashboard.pages import Pages
from clinic.dashboard.site import Site
from clinic.dashboard.static import StaticFiles
from clinic.http_errors import logged_answer, where
from contract.errors import OnshiError

#: The error page's message for each status ``clinic.http_errors`` answers with.
ERROR_MESSAGES = {
    404: "error.not_found",
    409: "error.conflict",
    503: "error.unavailable",
}


class Dashboard:
    """Every part of the dashboard, sharing one ``Site``."""

    def __init__(self, context: ClinicContext) -> None:
        self.context = context
        self.site = Site(context)
        self.sessions = Sessions(self.site)
        self.static = StaticFiles()
        self.pages = Pages(self.site, self.sessions)
        self.export = Export(self.site, self.sessions)
        self.live = LiveEvents(self.site, self.sessions)
        self.outage = Outage(self.site, self.sessions)

    async def error_page(self, request: Request, exc: Exception) -> Response:
        if not isinstance(exc, OnshiError):  # pragma: no cover - registered for OnshiError only
            raise exc
        answer = logged_answer(where(request), exc)
        session = getattr(request.state, "staff_session", None)
        message_key = ERROR_MESSAGES.get(answer.status, "error.server")
        response = self.site.error_page(request, session, answer.status, message_key)
        response.headers.update(answer.headers)
        return response

    def app(self) -> ASGIApp:
        routes = [
            *self.sessions.routes(),
            *self.static.routes(),
            *self.pages.routes(),
            *self.live.routes(),
            *self.export.routes(),
            *self.outage.routes(),
        ]
        app = Starlette(routes=routes, exception_handlers={OnshiError: self.error_page})
        app.state.clinic = self.context
        app.state.dashboard = self
        return SecurityHeaders(app)


def create_staff_app(context: ClinicContext) -> ASGIApp:
    return Dashboard(context).app()
