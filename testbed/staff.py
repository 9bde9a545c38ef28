"""The staff's hands: the kiosk's button pressed on gpiozero's mock pins, and the staff
dashboard used over HTTPS the way a receptionist's browser uses it (log in, read the queue,
confirm or reject a visual check).
"""

from __future__ import annotations

import re
import ssl
import time
from pathlib import Path
from typing import Any

import httpx


class StaffHand:
    """A member of staff's finger on the kiosk's button (a gpiozero mock pin driven low)."""

    def __init__(self, pin_factory: Any, pin: int, *, bounce_s: float = 0.05) -> None:
        self._pin = pin_factory.pin(pin)
        self._bounce_s = bounce_s

    def press(self, hold_s: float | None = None) -> None:
        """A short press (released after a moment), or held ``hold_s`` seconds."""
        self._pin.drive_low()
        time.sleep(hold_s if hold_s is not None else self._bounce_s * 3 + 0.05)
        self._pin.drive_high()
        time.sleep(self._bounce_s * 2)


class ReceptionistBrowser:
    """The staff dashboard over HTTPS, as a receptionist's browser uses it."""

    def __init__(self, url: str, server_ca: Path, username: str, password: str) -> None:
        self._client = httpx.Client(
            base_url=url,
            verify=ssl.create_default_context(cafile=str(server_ca)),
            follow_redirects=False,
            timeout=10.0,
        )
        self._username = username
        self._password = password
        self._logged_in = False

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ReceptionistBrowser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def login(self) -> None:
        page = self._client.get("/login")
        answer = self._client.post(
            "/login",
            data={
                "csrf": _hidden(page.text, "csrf"),
                "username": self._username,
                "password": self._password,
                "next": "/queue",
            },
        )
        if answer.status_code != 303 or "failed" in answer.headers.get("location", ""):
            raise RuntimeError(f"dashboard login refused ({answer.status_code})")
        self._logged_in = True

    def awaiting(self, device_id: str) -> list[str]:
        """Visual checks of ``device_id`` waiting for staff, from the queue page."""
        if not self._logged_in:
            self.login()
        page = self._client.get("/queue")
        page.raise_for_status()
        found = []
        for ticket in re.findall(
            r'<article class="ticket[^"]*"[^>]*? id="q-([0-9a-f]{32})"[^>]*>(.*?)'
            r"</article>",
            page.text,
            re.S,
        ):
            vid, body = ticket
            if device_id in body and f"/verifications/{vid}/decide" in body:
                found.append(vid)
        return found

    def decide(self, verification_id: str, decision: str = "confirmed") -> None:
        """Press the confirm (or reject) button of the queue page."""
        page = self._client.get("/queue")
        answer = self._client.post(
            f"/verifications/{verification_id}/decide",
            data={"csrf": _hidden(page.text, "csrf"), "decision": decision, "next": "/queue"},
        )
        if answer.status_code != 303:
            raise RuntimeError(f"the decision was refused ({answer.status_code})")


def _hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    if match is None:
        raise RuntimeError(f"no hidden field {name!r} on the page")
    return match.group(1)
