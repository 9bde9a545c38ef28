"""A scripted patient: places a card, reads the screen, does what it offers (types the PIN
through the display's input, as a touch would; asks for the staff check when that is the
only way), takes the card; and the transcript line of that visit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kiosk.flow.screens import Screen, ScreenId, UiAction, UiInput
from kiosk.sim.population import PopulationCard
from testbed.environment import DEMO_PORT
from testbed.screen_log import FINAL_SCREENS, ScreenLog


@dataclass
class Visit:
    """One patient at the kiosk, as the transcript records it."""

    profile: str
    outcome: str
    expected: str
    shown: str
    seconds: float
    screens: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "outcome": self.outcome,
            "expected": self.expected,
            "shown": self.shown,
            "seconds": round(self.seconds, 3),
            "screens": self.screens,
        }


def route_shown(screens: list[Screen]) -> str:
    """``ok``, ``staff`` or ``error``: how the visit ended, read off the screens alone."""
    ids = [s.id for s in screens]
    final = next((s for s in reversed(screens) if s.id in FINAL_SCREENS), None)
    if final is None:
        return "none"
    if final.id is ScreenId.ERROR:
        return "error"
    if final.id is ScreenId.RESULT_OK and ScreenId.VISUAL_WAIT not in ids:
        return "ok"
    return "staff"


def describe_screen(screen: Screen) -> dict[str, Any]:
    """A screen for the transcript: what it shows, never more."""
    item: dict[str, Any] = {"id": screen.id.value}
    if screen.notice is not None:
        item["notice"] = screen.notice.code
    if screen.tries_left is not None:
        item["tries_left"] = screen.tries_left
    if screen.pin_unavailable is not None:
        item["pin_unavailable"] = screen.pin_unavailable.value
    if screen.digits_typed:
        item["digits"] = screen.digits_typed
    if screen.wrong_pin:
        item["wrong_pin"] = True
    if screen.renew_certificate:
        item["renew_certificate"] = True
    if screen.reminder_level:
        item["reminder_level"] = screen.reminder_level
    return item


class Patient:
    """Places a card, does what the screen offers, takes the card; never looks behind it.

    ``pin`` is what the patient remembers (None: nothing to type); ``pause_s`` the time
    between two keys. The staff check is chosen when it is the only way, and then ``staff``
    confirms it (the kiosk's button, or the dashboard).
    """

    def __init__(
        self,
        log: ScreenLog,
        *,
        staff: Callable[[], None],
        pause_s: float = 0.0,
        timeout_s: float = 20.0,
    ) -> None:
        self.log = log
        self.staff = staff
        self.pause_s = pause_s
        self.timeout_s = timeout_s

    def type_pin(self, pin: str) -> None:
        for digit in pin:
            if self.pause_s:
                time.sleep(self.pause_s)
            self.log.touch(UiInput(UiAction.DIGIT, digit))

    def until_final(self, pin: str | None, mark: int) -> Screen:
        """React to each new screen until a final one; returns it."""
        seen = mark
        while True:
            screen = self.log.wait_change(seen, self.timeout_s)
            seen += 1
            if screen.id in FINAL_SCREENS:
                return screen
            if screen.id is ScreenId.PIN_ENTRY and screen.digits_typed == 0:
                if pin is None:
                    self.log.touch(UiInput(UiAction.CANCEL))
                else:
                    self.type_pin(pin)
            elif screen.id is ScreenId.CHOOSE_CHECK:
                if screen.pin_unavailable is not None or pin is None:
                    self.log.touch(UiInput(UiAction.CHOOSE_VISUAL))
                else:
                    self.log.touch(UiInput(UiAction.CHOOSE_PIN))
            elif screen.id is ScreenId.VISUAL_WAIT:
                self.staff()


def visit(
    patient: Patient,
    card: PopulationCard,
    *,
    pin: str | None,
    port: int = DEMO_PORT,
    timing: Any = None,
) -> Visit:
    """One patient of ``card``'s outcome: place, follow the screens, take the card, wait for
    the kiosk to be ready again."""
    from kiosk.sim.card import VirtualJpkiCard
    from kiosk.sim.vpcd import insert

    profile = card.load_profile()
    log = patient.log
    log.wait_for(lambda s: s.id is ScreenId.IDLE, patient.timeout_s, after=max(0, log.mark() - 1))
    mark = log.mark()
    start = time.monotonic()
    slot = insert(VirtualJpkiCard(profile), port=port, timing=timing)
    try:
        patient.until_final(pin, mark)
        seconds = time.monotonic() - start
    finally:
        slot.remove()
    log.wait_for(lambda s: s.id is ScreenId.IDLE, patient.timeout_s, after=log.mark() - 1)
    screens = [item.screen for item in log.since(mark)]
    return Visit(
        profile=card.id,
        outcome=card.outcome,
        expected=card.expected_route,
        shown=route_shown(screens),
        seconds=seconds,
        screens=[describe_screen(s) for s in screens],
    )
