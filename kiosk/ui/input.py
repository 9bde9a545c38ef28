"""Touches, clicks and key presses to :class:`~kiosk.flow.screens.UiInput` values.

* Touch: ``FINGERDOWN`` with coordinates normalised to the window (0..1). A button acts when
  pressed, so a long press or a slide still counts; the ``FINGERUP`` is ignored.
* Mouse: ``MOUSEBUTTONDOWN`` with the left button, for panels that report touches as a mouse.
  Mouse events SDL synthesised from a touch (``touch`` is true) are dropped, so one tap never
  counts twice.
* Keys (a USB numeric keypad or a keyboard): the digits of the keypad and of the top row type
  PIN digits where the keypad is shown; Backspace, Delete and the keypad's ``.`` correct;
  Enter presses the screen's default button; Escape and the keypad's ``-`` press Back.

Double taps are debounced: the same target pressed again within :data:`REPEAT_GUARD_S` is
ignored, and so is any touch in the first :data:`SETTLE_S` after a new screen appears (the
second tap of a double tap must not press what appeared under the finger).

The PIN digits pass through as inputs only: nothing here records or logs them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pygame

from kiosk.flow.screens import UiAction, UiInput
from kiosk.ui.render import Frame

#: The same touch target again within this many seconds is a bounce, not a second press.
REPEAT_GUARD_S = 0.22
#: Touches this soon after a new screen appeared are ignored.
SETTLE_S = 0.4

_DIGIT_KEYS: dict[int, str] = {
    **{getattr(pygame, f"K_{d}"): str(d) for d in range(10)},
    **{getattr(pygame, f"K_KP{d}"): str(d) for d in range(10)},
}
#: SDL scancodes of the keypad digits, for keypads whose keys arrive without Num Lock.
_DIGIT_SCANCODES: dict[int, str] = {89 + i: str(i + 1) for i in range(9)} | {98: "0"}
_ERASE_KEYS = frozenset({pygame.K_BACKSPACE, pygame.K_DELETE, pygame.K_KP_PERIOD})
_ERASE_SCANCODES = frozenset({99})  # keypad "." / Del
_ENTER_KEYS = frozenset({pygame.K_RETURN, pygame.K_KP_ENTER})
_BACK_KEYS = frozenset({pygame.K_ESCAPE, pygame.K_KP_MINUS})


@dataclass(frozen=True)
class Viewport:
    """Where the drawn screen sits in the window: window = offset + layout * scale."""

    window_size: tuple[int, int]
    offset: tuple[int, int] = (0, 0)
    scale: float = 1.0

    def to_layout(self, point: tuple[float, float]) -> tuple[int, int]:
        x, y = point
        return (
            int((x - self.offset[0]) / self.scale),
            int((y - self.offset[1]) / self.scale),
        )


class InputMapper:
    """Turns pygame events into inputs for the frame on screen."""

    def __init__(self, viewport: Viewport) -> None:
        self.viewport = viewport
        self._frame: Frame | None = None
        self._shown_at = float("-inf")
        self._last: tuple[UiInput, float] | None = None

    def show(self, frame: Frame, now: float) -> None:
        """A frame is on screen; a new screen id starts the settle time."""
        if self._frame is None or self._frame.screen.id is not frame.screen.id:
            self._shown_at = now
        self._frame = frame

    def handle(self, event: pygame.event.Event, now: float) -> UiInput | None:
        if self._frame is None:
            return None
        if event.type == pygame.FINGERDOWN:
            w, h = self.viewport.window_size
            return self._touch((event.x * w, event.y * h), now)
        if event.type == pygame.MOUSEBUTTONDOWN:
            if getattr(event, "touch", False) or event.button != pygame.BUTTON_LEFT:
                return None
            return self._touch(event.pos, now)
        if event.type == pygame.KEYDOWN:
            return self._key(event)
        return None

    def _touch(self, point: tuple[float, float], now: float) -> UiInput | None:
        assert self._frame is not None
        if now - self._shown_at < SETTLE_S:
            return None
        target = self._frame.target_at(self.viewport.to_layout(point))
        if target is None:
            return None
        last = self._last
        if last is not None and last[0] == target.input and now - last[1] < REPEAT_GUARD_S:
            return None
        self._last = (target.input, now)
        return target.input

    def _key(self, event: pygame.event.Event) -> UiInput | None:
        assert self._frame is not None
        view = self._frame.view
        key, scancode = event.key, getattr(event, "scancode", None)
        if view.keypad:
            digit = _DIGIT_KEYS.get(key)
            if digit is None and scancode is not None:
                digit = _DIGIT_SCANCODES.get(scancode)
            if digit is not None:
                return UiInput(UiAction.DIGIT, digit)
            if key in _ERASE_KEYS or scancode in _ERASE_SCANCODES:
                return UiInput(UiAction.ERASE)
        if key in _ENTER_KEYS:
            button = view.default_button()
            return button.input if button is not None else None
        back = UiInput(UiAction.CANCEL)
        if key in _BACK_KEYS and back in view.inputs():
            return back
        return None
