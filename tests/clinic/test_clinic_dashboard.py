"""The staff dashboard over HTTPS: login, sessions, CSRF, details, exports, access log, events."""

from __future__ import annotations

import csv
import io
import json
import queue
import secrets
import threading
import time

import pytest

from clinic.dashboard import SESSION_COOKIE


@pytest.fixture
def staff(clinic):
    """A logged-in administrator's HTTPS client."""
    with clinic.staff_client() as client:
        answer = clinic.login(client)
        assert answer.status_code == 303
        yield client


def csrf_of(client) -> str:
    page = client.get("/queue")
    marker = 'name="csrf" value="'
    start = page.text.index(marker) + len(marker)
    return page.text[start : page.text.index('"', start)]


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


def test_pages_carry_protective_headers(clinic, staff):
    answer = staff.get("/")
    assert answer.status_code == 200
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["cache-control"] == "no-store"
    assert '<html lang="ja">' in answer.text


def test_login_without_its_csrf_token_is_refused(clinic):
    with clinic.staff_client() as client:
        answer = client.post(
            "/login", data={"username": clinic.admin, "password": clinic.admin_password}
        )
    assert answer.status_code == 403
    assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")


def test_a_wrong_password_is_refused_and_repeated_failures_lock_the_account(clinic):
    password = secrets.token_urlsafe(12)
    name = f"reception-{secrets.token_hex(3)}"
    clinic.context.staff.add(name, password)
    with clinic.staff_client() as client:
        answer = clinic.login(client, name, "not the password")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login?failed=1"
        for _ in range(4):
            clinic.login(client, name, "still not the password")
        locked = clinic.login(client, name, password)
        assert locked.headers["location"] == "/login?failed=1", "locked even with the password"


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


def test_the_detail_is_laid_out_like_receipt_software_and_logged(clinic, staff):
    result = clinic.kiosk().check(clinic.card("valid-elderly-30-limit"), "pin")
    record = clinic.context.service.get(result.verification_id).records[0]
    page = staff.get(f"/verifications/{result.verification_id}")
    assert page.status_code == 200
    html = page.text
    for label in (
        "保険者番号",
        "記号",
        "番号",
        "枝番",
        "負担割合",
        "高齢受給者証",
        "限度額適用認定証",
    ):
        assert label in html
    assert record["NameKana"] in html
    digits = "".join(f'<span class="box">{c}</span>' for c in record["InsurerNumber"])
    assert digits in html, "the insurer number is shown digit by digit"
    assert "令和" in html or "平成" in html or "昭和" in html, "dates in the Japanese era"
    assert "3割" in html
    entries = clinic.context.access_log.for_verification(result.verification_id)
    assert [(e["username"], e["action"]) for e in entries] == [(clinic.admin, "view")]


def test_the_list_shows_no_patient_data(clinic, staff):
    result = clinic.kiosk().check(clinic.card("valid-family"), "pin")
    record = clinic.context.service.get(result.verification_id).records[0]
    page = staff.get("/")
    assert result.verification_id in page.text
    assert record["Name"] not in page.text
    assert record["InsurerNumber"] not in page.text


def test_the_staff_queue_lists_visual_checks_and_errors(clinic, staff):
    pending = clinic.kiosk().check(clinic.card("pin-locked"), "visual")
    failed = clinic.kiosk().check(clinic.card("not-registered"), "pin")
    page = staff.get("/queue").text
    assert pending.verification_id in page
    assert failed.verification_id in page
    assert (
        staff.post(
            f"/verifications/{failed.verification_id}/handled", data={"csrf": csrf_of(staff)}
        ).status_code
        == 303
    )
    assert failed.verification_id not in staff.get("/queue").text
    assert clinic.context.service.get(failed.verification_id).handled_by == clinic.admin


def test_export_of_a_day_as_csv_and_json_for_receipt_software(clinic, staff):
    result = clinic.kiosk().check(clinic.card("valid-preschool-public-expense"), "pin")
    v = clinic.context.service.get(result.verification_id)
    record = v.records[0]
    as_csv = staff.get(f"/export/{v.day}.csv")
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.text.lstrip("\ufeff"))))
    mine = [r for r in rows if r["verification_id"] == v.id]
    assert len(mine) == 1
    assert mine[0]["InsurerNumber"] == record["InsurerNumber"]
    assert mine[0]["InsuredPartialContributionRatio"] == "020"
    expense = record["PublicExpenseInfo"][0]
    assert mine[0]["PublicExpenseInfo"] == (
        f"{expense['PublicExpenseNumber']}:{expense['BeneficiaryNumber']}"
    )
    as_json = staff.get(f"/export/{v.day}.json").json()
    item = next(i for i in as_json if i["verification_id"] == v.id)
    assert item["records"] == v.records
    assert item["validity_code"] == 1
    actions = {e["action"] for e in clinic.context.access_log.for_verification(v.id)}
    assert {"export.csv", "export.json"} <= actions


def test_several_matches_export_one_row_per_record(clinic, staff):
    result = clinic.kiosk().check(clinic.card("several-matches"), "pin")
    v = clinic.context.service.get(result.verification_id)
    rows = list(
        csv.DictReader(io.StringIO(staff.get(f"/export/{v.day}.csv").text.lstrip("\ufeff")))
    )
    assert len([r for r in rows if r["verification_id"] == v.id]) == 2


def test_only_administrators_see_the_access_log(clinic, staff):
    result = clinic.kiosk().check(clinic.card("valid-national"), "pin")
    staff.get(f"/verifications/{result.verification_id}")
    page = staff.get("/access-log")
    assert page.status_code == 200
    assert result.verification_id[:8] in page.text
    assert 'id="chain"' in page.text
    assert "正常" in page.text
    password = secrets.token_urlsafe(12)
    name = f"nurse-{secrets.token_hex(3)}"
    clinic.context.staff.add(name, password)
    with clinic.staff_client() as nurse:
        clinic.login(nurse, name, password)
        assert nurse.get("/access-log").status_code == 403
        assert nurse.get(f"/verifications/{result.verification_id}").status_code == 200
    users = [
        e["username"] for e in clinic.context.access_log.for_verification(result.verification_id)
    ]
    assert users == [clinic.admin, name]


def test_the_kiosks_page_shows_health(clinic, staff):
    kiosk = clinic.kiosk("kiosk-health")
    kiosk.client.heartbeat("degraded", {"reader": "missing", "outbox": 3})
    page = staff.get("/kiosks").text
    assert "kiosk-health" in page
    assert "degraded" in page
    assert "reader=missing" in page


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


def test_new_verifications_are_pushed_as_server_sent_events(clinic, staff):
    events: queue.Queue = queue.Queue()
    ready = threading.Event()

    def listen():
        with staff.stream("GET", "/events", timeout=10) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            for line in stream.iter_lines():
                ready.set()
                if line.startswith("data: "):
                    events.put(json.loads(line[6:]))
                    return

    listener = threading.Thread(target=listen)
    listener.start()
    assert ready.wait(5)
    result = clinic.kiosk().check(clinic.card("valid-employee"), "pin")
    pushed = events.get(timeout=5)
    listener.join(5)
    assert pushed["id"] == result.verification_id
    assert pushed["status"] == "done"
    assert "Name" not in pushed


def test_stopping_the_server_ends_open_event_streams_and_long_polls(backend, population, tmp_path):
    from clinic_support import fresh_database, start_clinic, stop_clinic

    with fresh_database(backend) as database:
        running = start_clinic(backend, population, tmp_path, database)
        ended = threading.Event()
        polled: dict = {}
        try:
            kiosk = running.kiosk()
            pending = kiosk.check(running.card("face-auth"), "visual")
            with running.staff_client() as client:
                running.login(client)

                def listen():
                    with client.stream("GET", "/events", timeout=30) as stream:
                        for _ in stream.iter_lines():
                            pass
                    ended.set()

                def poll():
                    polled["result"] = kiosk.client.wait_for_result(pending.verification_id, 25)

                threads = [threading.Thread(target=listen), threading.Thread(target=poll)]
                for t in threads:
                    t.start()
                time.sleep(0.5)
                started = time.monotonic()
                running.thread.server.stop()
                for t in threads:
                    t.join(10)
                assert ended.is_set()
                assert polled["result"].awaiting_staff, "the long-poll answered before the end"
                assert time.monotonic() - started < 8
        finally:
            stop_clinic(running)


def test_event_streams_keep_delivering_after_idle_keep_alives(clinic, staff):
    dashboard = clinic.server.staff_app.app.state.dashboard
    dashboard.sse_heartbeat_s = 0.1
    lines: queue.Queue = queue.Queue()
    try:

        def listen():
            with staff.stream("GET", "/events", timeout=10) as stream:
                for line in stream.iter_lines():
                    lines.put(line)
                    if line.startswith("data: "):
                        return

        listener = threading.Thread(target=listen)
        listener.start()
        keep_alives = 0
        while keep_alives < 3:
            if lines.get(timeout=5).startswith(": keep-alive"):
                keep_alives += 1
        result = clinic.kiosk().check(clinic.card("valid-employee"), "pin")
        while True:
            line = lines.get(timeout=5)
            if line.startswith("data: "):
                break
        listener.join(5)
        assert json.loads(line[6:])["id"] == result.verification_id
    finally:
        dashboard.sse_heartbeat_s = 15.0


def test_an_event_stream_ends_when_its_session_does(clinic, clock):
    dashboard = clinic.server.staff_app.app.state.dashboard
    dashboard.sse_heartbeat_s = 0.1
    try:
        with clinic.staff_client() as client:
            clinic.login(client)
            with client.stream("GET", "/events", timeout=10) as stream:
                clock.offset = 16 * 60
                seen = list(stream.iter_lines())
        assert "event: logout" in seen
    finally:
        dashboard.sse_heartbeat_s = 15.0
