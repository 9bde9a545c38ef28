"""A kiosk's heartbeat on the dashboard, in headless Chromium: the kiosk's own heartbeat
sender posts to a real server over mutual TLS on loopback; when it stops, the kiosks page and
the badge on every page say so, and they clear when it is back.

Nothing here is timed: each wait polls the page (reloading it) until a generous deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from contract.heartbeat import SILENT_AFTER_BEATS
from contract.sealing import OutboxPublicKey
from kiosk.outbox.heartbeat import Heartbeat
from kiosk.outbox.queue import Outbox

INTERVAL_S = 1.0
#: Far more than the three intervals after which a kiosk is silent: a busy machine is slow.
DEADLINE_S = SILENT_AFTER_BEATS * INTERVAL_S + 60.0


@contextmanager
def beating(heartbeat: Heartbeat) -> Iterator[None]:
    """The heartbeat's own loop on a thread, as the kiosk runs it, until the block ends."""
    stop = threading.Event()
    thread = threading.Thread(target=heartbeat.run, args=(stop,), name="heartbeat")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)
        assert not thread.is_alive()


def poll(page, url: str, condition: Callable[[], bool], what: str) -> None:
    """Load ``url`` again and again until ``condition`` holds (or fail after the deadline)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        page.goto(url)
        if condition():
            return
        assert time.monotonic() < deadline, f"not within {DEADLINE_S:.0f} s: {what}"
        page.wait_for_timeout(300)


def test_a_kiosk_that_stops_beating_is_flagged_on_the_kiosks_page_and_every_page(
    clinic, browser_page, tmp_path
):
    page = browser_page
    kiosk = clinic.kiosk("kiosk-beat")  # its own device certificate, mutual TLS, signed requests
    public = OutboxPublicKey.load(clinic.config.data_dir / "outbox.pub.json")
    outbox = Outbox(tmp_path / "outbox.db", device_id=kiosk.device_id, public_key=public)
    outbox.append("card.event", {"n": 1})
    heartbeat = Heartbeat(
        outbox,
        reader_state=lambda: "present",
        clock_synced=lambda: True,
        interval_s=INTERVAL_S,
        reporter=kiosk.client,
        last_notice=lambda: ("K-201", time.time()),
    )

    page.goto(clinic.staff_url + "/login")
    page.fill("#username", clinic.admin)
    page.fill("#password", clinic.admin_password)
    page.click("#login")
    page.wait_for_selector("#verifications")

    row = page.locator("#kiosk-kiosk-beat")
    badge = page.locator("#kiosk-badge")
    try:
        with beating(heartbeat):
            poll(
                page,
                clinic.staff_url + "/kiosks",
                lambda: row.count() == 1 and row.locator("td.reader").inner_text() == "present",
                "the kiosks page shows the heartbeat",
            )
            assert row.get_attribute("data-flagged") == "no"
            assert "未送信 1" in row.locator("td.outbox").inner_text()
            assert row.locator("td.clock").inner_text() == "同期済み"
            assert row.locator("td.notice").inner_text().startswith("K-201")
            assert row.locator("td.version").inner_text() != ""
            assert badge.count() == 0

        # the kiosk stops: an open page shows the badge without being reloaded...
        page.goto(clinic.staff_url + "/")
        page.evaluate("window.__notReloaded = true")
        badge.wait_for(timeout=DEADLINE_S * 1000)
        assert badge.get_attribute("data-devices") == "kiosk-beat"
        assert page.evaluate("window.__notReloaded === true"), "the page was not reloaded"

        # ...and within three intervals (polled, with room to spare) the kiosks page flags it
        poll(
            page,
            clinic.staff_url + "/kiosks",
            lambda: row.get_attribute("data-flagged") == "yes",
            "the kiosks page flags the silent kiosk",
        )
        assert "応答なし" in row.locator("td.heartbeat").inner_text()
        assert badge.locator(".count").inner_text() == "1"
        for path in ("/", "/queue"):
            page.goto(clinic.staff_url + path)
            assert badge.get_attribute("data-devices") == "kiosk-beat", path
        badge.click()
        page.wait_for_url("**/kiosks")

        # back again: the flag and the badge go, on the open kiosks page too
        page.evaluate("window.__notReloaded = true")
        with beating(heartbeat):
            badge.wait_for(state="detached", timeout=DEADLINE_S * 1000)
            assert row.get_attribute("data-flagged") == "no"
            assert page.evaluate("window.__notReloaded === true"), "the page was not reloaded"
            page.goto(clinic.staff_url + "/")
            assert badge.count() == 0
    finally:
        outbox.close()
    assert page.problems == [], "no script or CSP errors in the page"
