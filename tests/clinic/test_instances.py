"""Two instances of the server on one PostgreSQL database (loopback): any instance answers
any request, and live updates cross instances through LISTEN/NOTIFY."""

from __future__ import annotations

import threading
import time

import pytest

from clinic.instances import live_instances
from clinic.server import ClinicServer, ServerThread, build_context
from tests.clinic.dashboard.conftest import CHROMIUM, CHROMIUM_FLAGS, spki_pin
from tests.support.clinic import Clinic, fresh_database, start_clinic, stop_clinic


@pytest.fixture(scope="module")
def pair(population, tmp_path_factory):
    """Instances A and B: one data directory's settings and keys, one PostgreSQL database."""
    with fresh_database("postgresql") as database:
        a = start_clinic("postgresql", population, tmp_path_factory.mktemp("a"), database)
        try:
            context = build_context(a.config, clock=a.clock)
            server = ClinicServer(a.config, context)
            thread = ServerThread(server).start()
            b = Clinic(
                "postgresql",
                a.config,
                context,
                server,
                thread,
                a.clock,
                population,
                tmp_path_factory.mktemp("b"),
                a.admin,
                a.admin_password,
            )
            try:
                yield a, b
            finally:
                stop_clinic(b)
        finally:
            stop_clinic(a)


def test_both_instances_are_listed_in_the_database(pair):
    a, b = pair
    ports = {row["kiosk_port"] for row in live_instances(a.context.db)}
    assert ports == {a.server.kiosk_port, b.server.kiosk_port}


def test_a_challenge_from_a_is_verified_at_b(pair):
    a, b = pair
    at_a = a.kiosk("roaming-kiosk")
    at_b = b.connect(at_a.cert_path, at_a.key_path)
    try:
        profile = a.card("valid-employee")
        challenge = at_a.client.challenge()
        from tests.support.clinic import sign_for

        result = at_b.client.verify(
            challenge.nonce,
            "pin",
            profile.user_auth_certificate,
            sign_for(profile, challenge.nonce, at_a.device_id, "pin"),
        )
        assert result.eligible
        # the nonce is used for both: A refuses it now
        again = at_a.client.verify(
            challenge.nonce,
            "pin",
            profile.user_auth_certificate,
            sign_for(profile, challenge.nonce, at_a.device_id, "pin"),
        )
        assert again.reason_code == "nonce.used"
    finally:
        at_b.close()


def test_a_staff_session_opened_on_a_works_on_b(pair):
    a, b = pair
    with a.staff_client() as on_a:
        assert a.login(on_a).status_code == 303
        with b.staff_client() as on_b:
            on_b.cookies = on_a.cookies
            answer = on_b.get("/queue")
            assert answer.status_code == 200
            assert 'name="csrf"' in answer.text


def test_a_decision_on_b_reaches_a_kiosk_waiting_on_a(pair):
    a, b = pair
    kiosk = a.kiosk("visual-kiosk")
    pending = kiosk.check(a.card("face-auth"), "visual")
    assert pending.awaiting_staff
    answer: dict = {}
    waiter = threading.Thread(
        target=lambda: answer.update(
            result=kiosk.client.wait_for_result(pending.verification_id, 20),
            at=time.monotonic(),
        )
    )
    waiter.start()
    time.sleep(0.5)  # the long-poll is waiting on A
    decided_at = time.monotonic()
    b.context.service.decide(pending.verification_id, "confirmed", by=b.admin)
    waiter.join(25)
    assert answer["result"].state == "done"
    assert answer["at"] - decided_at < 1.0, "the decision on B woke the long-poll on A at once"


def test_a_decision_on_b_shows_on_a_staff_page_within_a_second(pair, tmp_path):
    a, b = pair
    from playwright.sync_api import expect, sync_playwright

    kiosk = a.kiosk("queue-kiosk")
    pending = kiosk.check(a.card("face-auth"), "visual")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                *CHROMIUM_FLAGS,
                f"--ignore-certificate-errors-spki-list={spki_pin(a.config.paths.server_cert)}",
            ],
            locale="ja-JP",
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(10_000)
            page.goto(a.staff_url + "/login")
            page.fill("#username", a.admin)
            page.fill("#password", a.admin_password)
            page.click("#login")
            page.wait_for_selector("#verifications")
            page.evaluate("window.__notReloaded = true")
            row = page.locator(f"#v-{pending.verification_id}")
            row.wait_for()
            page.wait_for_function("document.getElementById('live-status') !== null")
            page.wait_for_timeout(300)  # the event stream is connected
            before = row.locator(".result").inner_text()

            # staff on instance B confirm it, through B's dashboard
            with b.staff_client() as staff_b:
                assert b.login(staff_b).status_code == 303
                from tests.support.clinic import csrf_of

                csrf = csrf_of(staff_b)
                started = time.monotonic()
                decided = staff_b.post(
                    f"/verifications/{pending.verification_id}/decide",
                    data={"csrf": csrf, "decision": "confirmed", "next": "/queue"},
                )
                assert decided.status_code == 303
            expect(row.locator(".result")).not_to_have_text(before, timeout=1000)
            seen = time.monotonic() - started
            assert seen < 1.0
            assert "有効" in row.locator(".result").inner_text()
            assert page.evaluate("window.__notReloaded === true"), "updated live, not reloaded"
        finally:
            browser.close()
