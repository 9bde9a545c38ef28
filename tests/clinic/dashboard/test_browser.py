"""The dashboard in headless Chromium (Debian's /usr/bin/chromium, the `browser_page` fixture
of conftest.py) driven by Playwright."""

from __future__ import annotations

import threading


def test_staff_see_a_kiosk_check_live_open_it_confirm_a_visual_check_and_export(
    clinic, browser_page, tmp_path
):
    page = browser_page
    page.goto(clinic.staff_url + "/")
    assert page.url.startswith(clinic.staff_url + "/login")
    page.fill("#username", clinic.admin)
    page.fill("#password", clinic.admin_password)
    page.click("#login")
    page.wait_for_selector("#verifications")
    assert page.locator("h1").inner_text().startswith("確認結果")

    # a kiosk checks a card: the row appears without reloading the page
    page.evaluate("window.__notReloaded = true")
    page.wait_for_function("document.getElementById('live-status') !== null")
    page.wait_for_timeout(300)  # the event stream is connected
    result = clinic.kiosk().check(clinic.card("valid-employee"), "pin")
    row = page.locator(f"#v-{result.verification_id}")
    row.wait_for(timeout=3000)
    assert "有効" in row.locator(".result").inner_text()
    assert page.evaluate("window.__notReloaded === true"), "the page was not reloaded"

    # its detail, laid out for typing into receipt software
    row.locator("a").click()
    page.wait_for_selector(".receipt")
    record = clinic.context.service.get(result.verification_id).records[0]
    insurer = page.locator('[data-field="InsurerNumber"]').inner_text().replace("\n", "")
    assert insurer == record["InsurerNumber"]
    assert "3割" in page.locator('[data-field="InsuredPartialContributionRatio"]').inner_text()
    page.screenshot(path=str(tmp_path / "detail.png"), full_page=True)

    # a visual check waits in the queue; staff confirm it, the kiosk gets its answer
    kiosk = clinic.kiosk()
    pending = kiosk.check(clinic.card("face-auth"), "visual")
    answer: dict = {}
    waiter = threading.Thread(
        target=lambda: answer.update(
            result=kiosk.client.wait_for_result(pending.verification_id, 20)
        )
    )
    waiter.start()
    try:
        page.click("a[href='/queue']")
        ticket = page.locator(f"#q-{pending.verification_id}")
        ticket.wait_for()
        ticket.locator("button.confirm").click()
        page.wait_for_url(f"**/queue?decided={pending.verification_id}")
        page.locator(f"#q-{pending.verification_id}").wait_for(state="detached")
        assert page.locator("#decided .result").inner_text(), "the outcome shows where staff are"
    finally:
        waiter.join(25)
    assert answer["result"].state == "done"
    assert answer["result"].eligible

    # export the day as CSV
    page.click("a[href='/']")
    with page.expect_download() as download_info:
        page.click("#export-csv")
    download = download_info.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    text = saved.read_text(encoding="utf-8-sig")
    assert result.verification_id in text
    assert pending.verification_id in text
    assert record["InsurerNumber"] in text
    assert page.problems == [], "no script or CSP errors in the page"


def test_the_dashboard_switches_to_english(clinic, browser_page):
    page = browser_page
    page.goto(clinic.staff_url + "/login")
    page.click("#lang-switch")
    assert page.locator("h1").inner_text() == "Staff login"
    page.fill("#username", clinic.admin)
    page.fill("#password", clinic.admin_password)
    page.click("#login")
    page.wait_for_selector("#verifications")
    assert page.locator("h1").inner_text().startswith("Verifications")
    assert page.problems == []
