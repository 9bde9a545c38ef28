"""The result files and the outage path in headless Chromium (Debian's /usr/bin/chromium)
driven by Playwright: words on the detail page, the write-failure banner and its retry, a
manual confirmation recorded and re-checked."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clinic.national.simulated import SimulatedNationalSystem
from tests.clinic.dashboard.conftest import CHROMIUM, CHROMIUM_FLAGS, spki_pin
from tests.clinic.receipt_files.conftest import folder_of
from tests.support.clinic import Clinic


@pytest.fixture
def page(receipt_clinic: Clinic, tmp_path: Path) -> Iterator[Any]:
    if not CHROMIUM.exists() or shutil.which("chromium") is None:
        pytest.fail(
            "Debian's chromium is missing: `make deps` installs it "
            "(provisioning/debian-packages.txt)",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    pin = spki_pin(receipt_clinic.config.paths.server_cert)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=[*CHROMIUM_FLAGS, f"--ignore-certificate-errors-spki-list={pin}"],
            locale="ja-JP",
        )
        try:
            opened = context.new_page()
            opened.set_default_timeout(10_000)
            problems: list[str] = []
            opened.on("pageerror", lambda error: problems.append(str(error)))
            opened.on(
                "console",
                lambda message: problems.append(message.text) if message.type == "error" else None,
            )
            opened.problems = problems
            opened.goto(receipt_clinic.staff_url + "/login")
            opened.fill("#username", receipt_clinic.admin)
            opened.fill("#password", receipt_clinic.admin_password)
            opened.click("#login")
            opened.wait_for_selector("#verifications")
            yield opened
        finally:
            context.close()


def test_detail_words_and_the_write_failure_banner(receipt_clinic: Clinic, page: Any) -> None:
    kiosk = receipt_clinic.kiosk("kiosk-browser")
    result = kiosk.check(receipt_clinic.card("valid-preschool-public-expense"), "pin")
    page.goto(f"{receipt_clinic.staff_url}/verifications/{result.verification_id}")
    field = page.locator('[data-field="InsuredCardClassification"]')
    assert field.inner_text() == "01 被保険者証（一般）"
    assert page.locator('[data-field="PreschoolClassification"]').inner_text() == "1 未就学該当"
    assert page.locator('[data-field="DisqualificationDate"]').inner_text() == "なし"
    label = page.locator(".field", has=field).locator(".label").inner_text()
    assert label == "資格確認書等の種別"
    for _ in range(40):  # the writer task writes within a second
        page.reload()
        if page.locator("#receipt-file[data-state=written]").count():
            break
        page.wait_for_timeout(100)
    assert "書き込み済み" in page.locator("#receipt-file").inner_text()

    folder = folder_of(receipt_clinic)
    away = folder.with_name("oqs-browser-away")
    folder.rename(away)
    try:
        failed = kiosk.check(receipt_clinic.card("valid-employee"), "pin")
        for _ in range(100):
            page.goto(receipt_clinic.staff_url + "/queue")
            if page.locator("#receipt-notice").count():
                break
            page.wait_for_timeout(100)
        banner = page.locator("#receipt-notice")
        assert "フォルダがありません" in banner.inner_text()
        assert banner.get_attribute("data-count") == "1"
    finally:
        away.rename(folder)
    page.locator("#receipt-notice button").click()
    page.wait_for_url("**/queue")
    assert page.locator("#receipt-notice").count() == 0
    assert len(list(folder.glob(f"OQSsiquc01res_face_{failed.verification_id}_*.xml"))) == 1
    assert page.problems == []


def test_manual_confirmation_and_recheck_in_the_browser(receipt_clinic: Clinic, page: Any) -> None:
    connector = receipt_clinic.context.connector
    assert isinstance(connector, SimulatedNationalSystem)
    connector.plan.down = True
    try:
        result = receipt_clinic.kiosk("kiosk-browser").check(
            receipt_clinic.card("valid-national"), "pin"
        )
    finally:
        connector.plan.down = False
    assert result.reason_code == "national.unavailable"
    page.goto(f"{receipt_clinic.staff_url}/verifications/{result.verification_id}")
    form = page.locator("#manual-form")
    form.locator("input[value=declaration]").check()
    form.locator("input[name=name]").fill("試験 一郎")
    form.locator("select[name=sex]").select_option("1")
    form.locator("input[name=birthdate]").fill("1975-06-30")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#manual-recorded")
    assert "被保険者資格申立書" in page.locator("#manual-recorded").inner_text()
    page.goto(receipt_clinic.staff_url + "/")
    row = page.locator(f"#v-{result.verification_id}")
    assert "手動確認" in row.inner_text()
    page.locator("#recheck button").click()
    page.wait_for_selector("#verifications")
    assert page.locator("#recheck").count() == 0
    v = receipt_clinic.context.service.get(result.verification_id)
    assert v is not None
    assert v.validity_code == 1
    assert page.problems == []
