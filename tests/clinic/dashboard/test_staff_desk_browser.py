"""The staff desk in headless Chromium: the waiting badge, title and chime on every page; the
notice-code page, complete and on one printed sheet; staff calls through the kiosk API as a
registered kiosk sends them (mutual TLS, signed requests), repeated and refused."""

from __future__ import annotations

import re
import secrets

import pytest

from clinic.dashboard.waiting import staff_calls
from contract.notices import STAFF_GUIDE, Notice
from kiosk.errors import ServerRejected


def report(visit: int, **changes: object) -> dict[str, object]:
    return {
        "key": f"t{secrets.token_hex(4)}-{visit}",
        "state": "open",
        "visit": visit,
        "reason": "no_card",
        "notice": Notice.NO_CARD.number,
        "verification_id": None,
        "late": False,
    } | changes


def sign_in(clinic, page, path: str) -> None:
    page.goto(clinic.staff_url + "/login?next=" + path)
    page.fill("#username", clinic.admin)
    page.fill("#password", clinic.admin_password)
    page.click("#login")
    page.wait_for_url("**" + path)


def test_every_page_counts_what_waits_retitles_and_chimes_when_sound_is_on(
    clinic, browser_page
) -> None:
    page = browser_page
    kiosk = clinic.kiosk("kiosk-desk")
    sign_in(clinic, page, "/kiosks")
    badge = page.locator("#queue-badge")
    before = int(badge.get_attribute("data-count") or 0)
    page.click("#chime-toggle")  # staff turn the sound on: kept in this browser
    assert page.locator("#chime-toggle").get_attribute("aria-pressed") == "true"

    call = report(7)
    kiosk.client.staff_call(call)
    page.wait_for_function(
        f"() => document.getElementById('queue-badge').dataset.count === '{before + 1}'"
    )
    assert badge.is_visible()
    assert re.match(rf"^（{before + 1}件 対応待ち）", page.title())
    page.wait_for_function("() => Number(document.documentElement.dataset.chimes || 0) >= 1")

    page.reload()  # the setting is kept in this browser; the count is on the page as served
    assert page.locator("#chime-toggle").get_attribute("aria-pressed") == "true"
    assert badge.get_attribute("data-count") == str(before + 1)

    kiosk.client.staff_call(call | {"state": "cleared"})
    page.wait_for_function(
        f"() => document.getElementById('queue-badge').dataset.count === '{before}'"
    )
    assert page.problems == [], "no script or CSP errors in the page"


def test_the_notice_code_page_lists_every_code_and_prints_on_one_sheet(
    clinic, browser_page
) -> None:
    page = browser_page
    sign_in(clinic, page, "/notices")
    rows = page.locator("#notices tbody tr")
    assert rows.count() == len(Notice)
    for notice in Notice:
        row = page.locator(f"#notice-{notice.code}")
        guide = STAFF_GUIDE[notice]
        assert row.locator(".saw").inner_text() == guide.patient_saw_ja
        assert row.locator(".do").inner_text() == guide.staff_do_ja
    pdf = page.pdf(format="A4", print_background=False)
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
    assert pages == 1, f"the notice codes print on {pages} sheets"
    assert page.problems == []


def test_a_kiosks_staff_call_is_recorded_once_and_a_late_one_waits_for_staff(clinic) -> None:
    kiosk = clinic.kiosk("kiosk-calls")
    store = staff_calls(clinic.context)
    call = report(3)
    kiosk.client.staff_call(call)
    kiosk.client.staff_call(call)  # the kiosk retried: still one call
    mine = [c for c in store.open_calls() if c.call_key == call["key"]]
    assert len(mine) == 1
    assert (mine[0].visit_label, mine[0].notice_code) == ("#003", "K-401")
    kiosk.client.staff_call(call | {"state": "cleared"})
    assert [c for c in store.open_calls() if c.call_key == call["key"]] == []

    late = report(4, late=True, reason="server_unreachable", notice=302)
    kiosk.client.staff_call(late)
    kiosk.client.staff_call(late | {"state": "cleared"})
    waiting = [c for c in store.open_calls() if c.call_key == late["key"]]
    assert len(waiting) == 1, "a late call stays until staff mark it handled"
    handled = store.handle(waiting[0].id, by="admin")
    assert handled.cleared_by == "admin"


@pytest.mark.parametrize(
    "bad",
    [
        {"reason": "bored"},
        {"notice": 7},
        {"key": "../etc"},
        {"verification_id": "not-an-id"},
        {"state": "maybe"},
        {"extra": 1},
    ],
)
def test_a_malformed_staff_call_is_refused_with_a_reason(clinic, bad) -> None:
    kiosk = clinic.kiosk("kiosk-calls")
    with pytest.raises(ServerRejected) as refused:
        kiosk.client.staff_call(report(5) | bad)
    assert refused.value.status == 422
