"""What the patient saw: every screen the kiosk handed to its display, in order, with
waits for the next one (the scripted patient's eyes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kiosk.flow.screens import PatientDisplay, Screen, ScreenId, UiInput

#: Screens a visit ends on (the patient takes the card there).
FINAL_SCREENS = frozenset(
    {ScreenId.RESULT_OK, ScreenId.NEEDS_STAFF, ScreenId.ERROR, ScreenId.SERVER_UNREACHABLE}
)


@dataclass(frozen=True)
class Shown:
    screen: Screen
    at: float


class ScreenLog:
    """A :class:`PatientDisplay` around another one: keeps every screen shown (and, with
    ``on_show``, e.g. photographs it), lets a script touch the screen, and waits for screens.
    """

    def __init__(
        self,
        inner: PatientDisplay | None = None,
        *,
        on_show: Callable[[Screen], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.on_show = on_show
        self._clock = clock
        self._on_input: Callable[[UiInput], None] | None = None
        self._cond = threading.Condition()
        self.shown: list[Shown] = []

    def start(self, on_input: Callable[[UiInput], None]) -> None:
        self._on_input = on_input
        if self.inner is not None:
            self.inner.start(on_input)

    def show(self, screen: Screen) -> None:
        with self._cond:
            if self.shown and self.shown[-1].screen == screen:
                return
            self.shown.append(Shown(screen, self._clock()))
            self._cond.notify_all()
        if self.inner is not None:
            self.inner.show(screen)
        if self.on_show is not None:
            self.on_show(screen)

    def stop(self) -> None:
        if self.inner is not None:
            self.inner.stop()

    def touch(self, ui: UiInput) -> None:
        """What a finger on the screen does: the input goes to the kiosk."""
        if self._on_input is None:
            raise RuntimeError("the display has not been started")
        self._on_input(ui)

    @property
    def current(self) -> Screen | None:
        with self._cond:
            return self.shown[-1].screen if self.shown else None

    def mark(self) -> int:
        with self._cond:
            return len(self.shown)

    def since(self, mark: int) -> list[Shown]:
        with self._cond:
            return list(self.shown[mark:])

    def wait_for(
        self, predicate: Callable[[Screen], bool], timeout_s: float = 10.0, *, after: int = 0
    ) -> Screen:
        """The first screen from ``after`` on that satisfies ``predicate`` (waiting for it)."""
        deadline = self._clock() + timeout_s
        with self._cond:
            while True:
                for item in self.shown[after:]:
                    if predicate(item.screen):
                        return item.screen
                left = deadline - self._clock()
                if left <= 0:
                    recent = [s.screen.id.value for s in self.shown[-8:]]
                    raise TimeoutError(f"the screen did not come; recent screens: {recent}")
                self._cond.wait(left)

    def wait_change(self, after: int, timeout_s: float = 10.0) -> Screen:
        """The next screen shown after position ``after``."""
        return self.wait_for(lambda _: True, timeout_s, after=after)
