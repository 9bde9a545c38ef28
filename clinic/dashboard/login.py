"""Staff sessions in the browser: signing in and out, CSRF tokens, pages that need a session.

Passwords, sessions and their idle timeout are kept by ``clinic.staff``, the throttling of
wrong passwords per source address and account by ``clinic.login_throttle``; here they meet
the browser. A login refused unheard (its address must wait, or every hashing slot is busy)
is the login form again with status 429 and ``Retry-After``, sent after a pause of up to
``REFUSAL_PAUSE_S``: a paused request costs the server nothing, and a guesser's connection
can then knock at most once a second instead of as fast as the refusals come back.

The session token travels in a ``__Host-`` cookie (``Secure``, ``HttpOnly``,
``SameSite=Strict``); the login form has its own CSRF token in a cookie of its own (there is
no session yet), every other form the session's token. The language switch is here too: like
the login form, it needs no session.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from clinic.dashboard.site import LANG_COOKIE, Site, local_path
from clinic.login_throttle import address_key, retry_after
from clinic.staff import LoginAttempt, StaffSession, csrf_ok

SESSION_COOKIE = "__Host-onshi-session"
LOGIN_CSRF_COOKIE = "__Host-onshi-login"

#: The longest a login refused unheard (throttled, or no hashing slot free) is held back.
REFUSAL_PAUSE_S = 1.0

#: Routes reachable without a session (everything else refuses: see the tests).
PUBLIC_PATHS = frozenset({"/login", "/static/{name}", "/lang"})

Handler = Callable[[Request], Awaitable[Response]]
PageHandler = Callable[[Request, StaffSession], Awaitable[Response]]
FormHandler = Callable[[Request, StaffSession, dict[str, str]], Awaitable[Response]]


class Sessions:
    """Who is signed in, and the guards for pages and forms that need it."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.context = site.context

    async def session_of(self, request: Request) -> StaffSession | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        return await self.context.run(self.context.staff.session, token)

    def guarded(self, handler: PageHandler) -> Handler:
        """Pages that need a session: GET without one goes to the login form; others get 401."""

        async def endpoint(request: Request) -> Response:
            session = await self.session_of(request)
            if session is None:
                if request.method == "GET" and request.url.path != "/events":
                    target = quote(request.url.path, safe="/")
                    return RedirectResponse(f"/login?next={target}", status_code=303)
                return PlainTextResponse("login required", status_code=401)
            request.state.staff_session = session  # for the error page, should one follow
            if request.method == "GET" and request.url.path != "/events":
                request.state.unwell = await self.site.unwell() or []  # the menu's badge
                request.state.waiting = await self.site.waiting() or 0  # the queue's badge
            return await handler(request, session)

        return endpoint

    def checked_form(self, handler: FormHandler) -> Handler:
        """State-changing POSTs: a session and its CSRF token."""

        async def with_session(request: Request, session: StaffSession) -> Response:
            form = await self.site.form(request)
            if form is None or not csrf_ok(session, form.get("csrf")):
                return self.site.error_page(request, session, 403, "error.csrf")
            return await handler(request, session, form)

        return self.guarded(with_session)

    # -- the routes --

    async def login_form(self, request: Request) -> Response:
        return self._login_page(
            request,
            failed=request.query_params.get("failed") == "1",
            next_path=local_path(request.query_params.get("next")),
        )

    def _login_page(
        self,
        request: Request,
        *,
        failed: bool = False,
        next_path: str = "/",
        wait_s: int | None = None,
        token: str | None = None,
    ) -> Response:
        keep = token is not None
        token = token or secrets.token_urlsafe(24)
        response = self.site.render(
            request,
            "login.html",
            None,
            200 if wait_s is None else 429,
            login_csrf=token,
            failed=failed,
            wait_s=wait_s,
            next=next_path,
        )
        if not keep:
            response.set_cookie(
                LOGIN_CSRF_COOKIE, token, secure=True, httponly=True, samesite="strict", path="/"
            )
        if wait_s is not None:
            response.headers["Retry-After"] = str(wait_s)
        return response

    async def login(self, request: Request) -> Response:
        form = await self.site.form(request)
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
        if form is None or not cookie or not secrets.compare_digest(cookie, form.get("csrf", "")):
            return self.site.error_page(request, None, 403, "error.csrf")
        username = form.get("username", "")[:64]
        password = form.get("password", "")[:1024]
        staff = self.context.staff
        address = address_key(request.client.host if request.client else None)
        # from memory: no thread, no database
        known_wait = staff.throttle.known_wait(address, username)
        if known_wait > 0:
            attempt = LoginAttempt("throttled", known_wait)
        else:
            attempt = await self.context.run(staff.login, address, username, password)
        if attempt.outcome in ("throttled", "busy"):
            pause = min(attempt.retry_after_s, REFUSAL_PAUSE_S)
            await asyncio.sleep(pause)
            wait_s = int(retry_after(attempt.retry_after_s - pause))
            return self._login_page(
                request, next_path=local_path(form.get("next")), wait_s=wait_s, token=cookie
            )
        if not attempt.ok:
            return RedirectResponse("/login?failed=1", status_code=303)
        token, _ = await self.context.run(staff.open_session, username)
        response = RedirectResponse(local_path(form.get("next")), status_code=303)
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
        response = RedirectResponse(local_path(request.query_params.get("next")), 303)
        response.set_cookie(
            LANG_COOKIE, lang, secure=True, httponly=True, samesite="strict", path="/"
        )
        return response

    def routes(self) -> list[Route]:
        return [
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/lang", self.set_lang, methods=["GET"]),
            Route("/logout", self.checked_form(self.logout), methods=["POST"]),
        ]
