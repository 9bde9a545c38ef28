"""Signing in and out: cookies, CSRF, throttling, idle sessions, the language switch."""

from __future__ import annotations

import secrets

from starlette.routing import Route

from clinic.dashboard.login import PUBLIC_PATHS, SESSION_COOKIE
from testbed.login_flood import client_from, login_csrf, post_login
from tests.support.clinic import concrete, csrf_of


def test_login_sets_a_private_session_cookie(clinic):
    with clinic.staff_client() as client:
        answer = clinic.login(client)
    assert answer.status_code == 303
    cookie = next(
        v for k, v in answer.headers.multi_items() if k == "set-cookie" and SESSION_COOKIE in v
    )
    lowered = cookie.lower()
    assert "secure" in lowered
    assert "httponly" in lowered
    assert "samesite=strict" in lowered
    assert "path=/" in lowered


def test_login_without_its_csrf_token_is_refused(clinic):
    with clinic.staff_client() as client:
        answer = client.post(
            "/login", data={"username": clinic.admin, "password": clinic.admin_password}
        )
    assert answer.status_code == 403
    assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")


def test_a_wrong_password_is_refused_and_repeated_failures_make_the_address_wait(clinic):
    password = secrets.token_urlsafe(12)
    name = f"reception-{secrets.token_hex(3)}"
    clinic.context.staff.add(name, password)
    # from an address of its own, so the other tests' logins from 127.0.0.1 do not wait
    with client_from(clinic.staff_url, clinic.server_ca, "127.0.9.1") as client:
        csrf = login_csrf(client)
        answer = post_login(client, csrf, name, "not the password")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login?failed=1"
        for _ in range(4):
            post_login(client, csrf, name, "still not the password")
        waiting = post_login(client, csrf, name, password)
        assert waiting.status_code == 429, "the address waits, even with the right password"
        assert int(waiting.headers["retry-after"]) >= 1


def test_state_changing_forms_need_the_session_csrf_token(clinic, staff):
    pending = clinic.kiosk().check(clinic.card("face-auth"), "visual")
    url = f"/verifications/{pending.verification_id}/decide"
    refused = staff.post(url, data={"decision": "confirmed", "csrf": "forged"})
    assert refused.status_code == 403
    assert clinic.context.service.get(pending.verification_id).state == "awaiting_staff"
    accepted = staff.post(url, data={"decision": "confirmed", "csrf": csrf_of(staff)})
    assert accepted.status_code == 303
    done = clinic.kiosk().client.wait_for_result(pending.verification_id, 0)
    assert done.eligible
    assert clinic.context.service.get(pending.verification_id).decided_by == clinic.admin


def test_sessions_end_after_idle_time(clinic, staff, clock):
    assert staff.get("/").status_code == 200
    clock.offset = 16 * 60
    answer = staff.get("/")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login")


def test_logout_ends_the_session(clinic):
    with clinic.staff_client() as client:
        clinic.login(client)
        assert client.post("/logout", data={"csrf": csrf_of(client)}).status_code == 303
        assert client.get("/").status_code == 303


def test_english_is_a_click_away(clinic, staff):
    answer = staff.get("/lang?to=en&next=/queue")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/queue"
    assert "Patients who need staff" in staff.get("/queue").text
    staff.get("/lang?to=ja&next=/")
    assert "職員の対応が必要な患者" in staff.get("/queue").text


def test_redirects_stay_on_this_site(clinic, staff):
    assert staff.get("/lang?to=en&next=//evil.example/").headers["location"] == "/"
    assert staff.get("/lang?to=en&next=https://evil.example/").headers["location"] == "/"


def test_every_dashboard_route_refuses_a_visitor_without_a_session(clinic):
    app = clinic.server.staff_app.app  # the Starlette app behind the security headers
    checked = 0
    with clinic.staff_client() as client:
        client.cookies.set("__Host-onshi-session", "not-a-session")
        for route in app.routes:
            assert isinstance(route, Route)
            if route.path in PUBLIC_PATHS:
                continue
            for method in sorted(route.methods or ()):
                if method == "HEAD":
                    continue
                path = concrete(route.path.replace("{day}.{kind}", "2026-01-01.csv"))
                answer = client.request(method, path)
                if method == "GET" and path != "/events":
                    assert answer.status_code == 303, (method, path)
                    assert answer.headers["location"].startswith("/login")
                else:
                    assert answer.status_code == 401, (method, path, answer.status_code)
                assert "見本" not in answer.text
                checked += 1
    assert checked >= 10
