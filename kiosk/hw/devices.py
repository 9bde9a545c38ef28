"""The status lights, the buzzer and the staff button, on gpiozero devices.

Every device is built on the pin factory it is given (``pin_factory=`` is required): lgpio on
the Pi, gpiozero's ``MockFactory`` in tests and demos (:func:`kiosk.hw.backend.build_hardware`
chooses). gpiozero's global default factory is never used.

Blinking and beeping run on gpiozero's background threads: :meth:`StatusLights.show` and
:meth:`Buzzer.play` return at once. The staff button's callbacks run on gpiozero's threads
too: keep them short (put an event on the runner's queue).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import gpiozero

from kiosk.hw.patterns import SOUND_PATTERNS, BeepPattern, Lamp, light_pattern
from kiosk.hw.signals import LightSignal, Sound

log = logging.getLogger(__name__)

Callback = Callable[[], None]


def _close_all(devices: Any) -> None:
    for device in devices:
        device.close()


class StatusLights:
    """Four LEDs that say one thing at a time (:class:`LightSignal`)."""

    def __init__(
        self,
        *,
        green: int,
        amber: int,
        red: int,
        blue: int,
        active_high: bool = True,
        pin_factory: Any,
    ) -> None:
        self._pins = {Lamp.GREEN: green, Lamp.AMBER: amber, Lamp.RED: red, Lamp.BLUE: blue}
        self._leds: dict[Lamp, Any] = {}
        try:
            for lamp, pin in self._pins.items():
                self._leds[lamp] = gpiozero.LED(
                    pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
                )
        except BaseException:
            _close_all(self._leds.values())
            raise
        self._lock = threading.Lock()
        self._shown: tuple[LightSignal, int] = (LightSignal.OFF, 0)

    @property
    def signal(self) -> LightSignal:
        """What the lights say now."""
        return self._shown[0]

    @property
    def reminder(self) -> int:
        """The card-left reminder level shown with :attr:`signal` (0: none)."""
        return self._shown[1]

    def pin_of(self, lamp: Lamp) -> int:
        """The BCM number of ``lamp``'s LED."""
        return self._pins[lamp]

    def show(self, signal: LightSignal, *, reminder: int = 0) -> None:
        """Light ``signal``'s lamp (blinking faster at card-left ``reminder`` levels 1..3).

        The other lamps go out first, so two meanings never show together. Showing what is
        already shown changes nothing (a blink keeps its rhythm).
        """
        pattern = light_pattern(signal, reminder)
        with self._lock:
            if self._shown == (signal, reminder):
                return
            for lamp, led in self._leds.items():
                if lamp is not pattern.lamp:
                    led.off()
            if pattern.lamp is not None:
                led = self._leds[pattern.lamp]
                if pattern.on_s is None:
                    led.on()
                else:
                    led.blink(on_time=pattern.on_s, off_time=pattern.off_s, background=True)
            self._shown = (signal, reminder)

    def lit(self) -> dict[Lamp, bool]:
        """Each lamp's LED at this instant (a blinking one may be in its dark half)."""
        return {lamp: bool(led.is_lit) for lamp, led in self._leds.items()}

    def close(self) -> None:
        """All lamps out, pins released."""
        with self._lock:
            _close_all(self._leds.values())
            self._shown = (LightSignal.OFF, 0)


class Buzzer:
    """An active buzzer that plays each :class:`Sound` as a short pattern of beeps."""

    def __init__(
        self,
        pin: int,
        *,
        active_high: bool = True,
        pin_factory: Any,
        patterns: Mapping[Sound, BeepPattern] = SOUND_PATTERNS,
    ) -> None:
        missing = set(Sound) - set(patterns)
        if missing:
            raise ValueError(f"no beep pattern for {', '.join(sorted(missing))}")
        self._patterns = dict(patterns)
        self._pin = pin
        self._device = gpiozero.Buzzer(
            pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
        )
        self._lock = threading.Lock()

    @property
    def pin(self) -> int:
        return self._pin

    def pattern(self, sound: Sound) -> BeepPattern:
        return self._patterns[sound]

    def play(self, sound: Sound) -> None:
        """Start ``sound`` in the background; it cuts off any sound still playing."""
        pattern = self._patterns[sound]
        with self._lock:
            self._device.beep(
                on_time=pattern.on_s, off_time=pattern.off_s, n=pattern.n, background=True
            )

    def silence(self) -> None:
        with self._lock:
            self._device.off()

    def close(self) -> None:
        with self._lock:
            self._device.close()


class StaffButton:
    """The staff's push button: a short press, or a long press (held ``long_press_s``).

    Each press calls exactly one of :attr:`on_press` (on release, if it was not held long
    enough) or :attr:`on_long_press` (as soon as it has been held long enough; releasing it
    afterwards calls nothing). Either may be None. Set them after building, from the runner.
    """

    def __init__(
        self,
        pin: int,
        *,
        pull_up: bool = True,
        bounce_s: float = 0.05,
        long_press_s: float = 3.0,
        pin_factory: Any,
        on_press: Callback | None = None,
        on_long_press: Callback | None = None,
    ) -> None:
        self.on_press = on_press
        self.on_long_press = on_long_press
        self._pin = pin
        self._lock = threading.Lock()
        self._resolved = True  # the current press already called its callback
        self._device = gpiozero.Button(
            pin,
            pull_up=pull_up,
            bounce_time=bounce_s or None,
            hold_time=long_press_s,
            hold_repeat=False,
            pin_factory=pin_factory,
        )
        self._device.when_pressed = self._pressed
        self._device.when_held = self._held
        self._device.when_released = self._released

    @property
    def pin(self) -> int:
        return self._pin

    @property
    def is_pressed(self) -> bool:
        return bool(self._device.is_pressed)

    @property
    def long_press_s(self) -> float:
        return float(self._device.hold_time)

    def _pressed(self) -> None:
        with self._lock:
            self._resolved = False

    def _held(self) -> None:
        with self._lock:
            if self._resolved:
                return
            self._resolved = True
        self._call(self.on_long_press, "long press")

    def _released(self) -> None:
        with self._lock:
            if self._resolved:
                return
            self._resolved = True
        self._call(self.on_press, "press")

    @staticmethod
    def _call(callback: Callback | None, what: str) -> None:
        if callback is None:
            return
        try:
            callback()
        except Exception:
            # gpiozero's event thread must survive a broken handler: the next press still counts
            log.exception("the staff button's %s handler failed", what)

    def close(self) -> None:
        self._device.close()
