"""``kiosk hw test``: cycle every light and sound, and wait for the staff button.

::

    kiosk hw test [--config /etc/onshi-kiosk/kiosk.toml] [--backend lgpio|mock|auto]
                  [--step-s 2] [--button-timeout-s 20] [--no-button]

On the Pi a maintainer watches and listens while each step is named on the terminal, then
presses and holds the staff button when asked. Stop ``onshi-kiosk.service`` first: the pins
can have one owner only. With the mock backend the same steps run on simulated pins and each
one is checked against the pins' recorded history, so the command is also a self-check of the
wiring code on a PC. Exit codes: 0 all steps done, 1 a step failed or the button was not
pressed in time, 2 a configuration problem.
"""

from __future__ import annotations

import argparse
import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.hw.backend import Hardware, build_hardware
from kiosk.hw.config import BACKENDS, GpioConfig, load_gpio_config
from kiosk.hw.patterns import MAX_REMINDER_LEVEL, Lamp, light_pattern
from kiosk.hw.signals import LightSignal, Sound

DEFAULT_CONFIG = Path("/etc/onshi-kiosk/kiosk.toml")

SIGNAL_MEANINGS = {
    LightSignal.READY: "ready: place your card",
    LightSignal.BUSY: "busy: reading, checking",
    LightSignal.ELIGIBLE: "eligible",
    LightSignal.STAFF_NEEDED: "staff needed",
    LightSignal.VISUAL_CHECK_WAITING: "visual check: waiting for staff",
    LightSignal.ERROR: "error",
}
SOUND_MEANINGS = {
    Sound.CARD_DETECTED: "card detected: one short beep",
    Sound.SUCCESS: "success: two short beeps",
    Sound.FAILURE: "failure: one long beep",
    Sound.KEY: "key: a tick",
    Sound.REMINDER_1: "card left, reminder 1: two beeps",
    Sound.REMINDER_2: "card left, reminder 2: three beeps",
    Sound.REMINDER_3: "card left, reminder 3: five longer beeps",
}


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hw = subparsers.add_parser("hw", help="the status lights, buzzer and staff button")
    commands = hw.add_subparsers(dest="hw_command", required=True)
    test = commands.add_parser(
        "test", help="cycle each light and sound and wait for the staff button (self-test)"
    )
    test.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"the kiosk's TOML file ([gpio]); default {DEFAULT_CONFIG} when it exists",
    )
    test.add_argument("--backend", choices=BACKENDS, help="override [gpio] backend")
    test.add_argument(
        "--step-s", type=float, default=2.0, help="seconds each light is shown (default 2)"
    )
    test.add_argument(
        "--button-timeout-s",
        type=float,
        default=20.0,
        help="seconds to wait for each button press (default 20)",
    )
    test.add_argument("--no-button", action="store_true", help="skip the staff button")
    test.set_defaults(handler=run_test)


def _config(args: argparse.Namespace) -> GpioConfig:
    if args.config is not None:
        config = load_gpio_config(args.config)
    elif DEFAULT_CONFIG.is_file():
        config = load_gpio_config(DEFAULT_CONFIG)
    else:
        config = GpioConfig()
    if args.backend is not None:
        config = dataclasses.replace(config, backend=args.backend)
    return config


class _Run:
    """Prints each step and, on mock pins, checks what the pins did."""

    #: how long a check on mock pins waits for the background threads (a loaded machine)
    SETTLE_S = 3.0

    def __init__(self, hw: Hardware, config: GpioConfig, out: Callable[[str], None]) -> None:
        self.hw = hw
        self.config = config
        self.out = out
        self.failures: list[str] = []

    # --- mock pins -----------------------------------------------------------------------------

    def _pin(self, bcm: int) -> Any:
        return self.hw.pin_factory.pin(bcm)

    def _clear(self) -> None:
        if self.hw.simulated:
            for bcm in self.config.pins.values():
                self._pin(bcm).clear_states()

    def _went(self, bcm: int, level: bool) -> int:
        """How many times the mock pin changed to ``level`` since the last clear."""
        return sum(1 for change in self._pin(bcm).states[1:] if change.state == level)

    def _settle(self, condition: Callable[[], bool]) -> bool:
        deadline = time.monotonic() + self.SETTLE_S
        while not condition():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def _fail(self, step: str, detail: str) -> None:
        self.failures.append(f"{step}: {detail}")
        self.out(f"    FAILED: {detail}")

    def _drive(self, bcm: int, *, pressed: bool) -> None:
        # a pulled-up button reads low while pressed
        pin = self._pin(bcm)
        if pressed == self.config.button_pull_up:
            pin.drive_low()
        else:
            pin.drive_high()

    # --- steps ---------------------------------------------------------------------------------

    def light(self, signal: LightSignal, reminder: int, step_s: float) -> None:
        pattern = light_pattern(signal, reminder)
        assert pattern.lamp is not None
        if pattern.on_s is None:
            how = "steady"
        else:
            how = f"blinking {pattern.on_s:g} s on, {pattern.off_s:g} s off"
        label = signal.value + (f", card-left reminder {reminder}" if reminder else "")
        bcm = self.hw.lights.pin_of(pattern.lamp)
        self.out(f"  {pattern.lamp.value:<5} (GPIO {bcm:>2})  {how:<32} {label}")
        self._clear()
        self.hw.lights.show(signal, reminder=reminder)
        time.sleep(step_s)
        if not self.hw.simulated:
            return
        on = self.config.leds_active_high

        def shown() -> bool:
            if pattern.on_s is None:
                return bool(self._pin(bcm).state == on)
            return self._went(bcm, on) >= 1 and self._went(bcm, not on) >= 1

        if not self._settle(shown):
            self._fail(label, f"{pattern.lamp.value} is not {how}")
        for lamp in Lamp:
            if lamp is pattern.lamp:
                continue
            other = self._pin(self.hw.lights.pin_of(lamp))
            if other.state == on or self._went(self.hw.lights.pin_of(lamp), on):
                self._fail(label, f"{lamp.value} lit as well")

    def sound(self, sound: Sound, step_s: float) -> None:
        pattern = self.hw.buzzer.pattern(sound)
        self.out(f"  buzzer (GPIO {self.hw.buzzer.pin:>2})  {SOUND_MEANINGS[sound]}")
        self._clear()
        self.hw.buzzer.play(sound)
        if not self.hw.simulated:
            time.sleep(max(step_s / 2, pattern.duration_s + 0.3))
            return
        time.sleep(step_s / 2)
        bcm, on = self.hw.buzzer.pin, self.config.buzzer_active_high
        done = self._settle(lambda: self._went(bcm, not on) >= pattern.n)
        beeps = self._went(bcm, on)
        if not done or beeps != pattern.n:
            self._fail(sound.value, f"{beeps} beeps, not {pattern.n}")

    def button(self, timeout_s: float) -> None:
        button = self.hw.button
        pressed = threading.Event()
        held = threading.Event()
        button.on_press = pressed.set
        button.on_long_press = held.set
        try:
            self.out(f"  staff button (GPIO {button.pin:>2}): press it briefly")
            if self.hw.simulated:
                self._drive(button.pin, pressed=True)
                self._drive(button.pin, pressed=False)
            if pressed.wait(timeout_s):
                self.out("    short press: staff confirms")
                self.hw.buzzer.play(Sound.KEY)
            else:
                self._fail("staff button", f"no short press within {timeout_s:g} s")
            self.out(f"  staff button: now hold it for {button.long_press_s:g} s")
            if self.hw.simulated:
                self._drive(button.pin, pressed=True)
            if held.wait(timeout_s + button.long_press_s):
                self.out("    long press: staff mode")
                self.hw.buzzer.play(Sound.SUCCESS)
            else:
                self._fail("staff button", f"no long press within {timeout_s:g} s")
            if self.hw.simulated:
                self._drive(button.pin, pressed=False)
        finally:
            button.on_press = None
            button.on_long_press = None


def self_test(
    hw: Hardware,
    config: GpioConfig,
    *,
    step_s: float,
    button_timeout_s: float | None,
    out: Callable[[str], None] = print,
) -> list[str]:
    """Run every step on ``hw``; returns the failures (empty when all went well)."""
    run = _Run(hw, config, out)
    out("lights, one meaning at a time:")
    for signal in SIGNAL_MEANINGS:
        run.light(signal, 0, step_s)
    out("card left on the reader, escalating:")
    for level in range(1, MAX_REMINDER_LEVEL + 1):
        run.light(LightSignal.ELIGIBLE, level, step_s)
    hw.lights.show(LightSignal.OFF)
    out("sounds:")
    for sound in SOUND_MEANINGS:
        run.sound(sound, step_s)
    if button_timeout_s is not None:
        run.button(button_timeout_s)
    return run.failures


def run_test(args: argparse.Namespace) -> int:
    config = _config(args)
    with build_hardware(config) as hw:
        where = "simulated pins, checked" if hw.simulated else "watch and listen"
        print(f"backend: {hw.backend} ({where})")
        failures = self_test(
            hw,
            config,
            step_s=args.step_s,
            button_timeout_s=None if args.no_button else args.button_timeout_s,
        )
    if failures:
        print(f"{len(failures)} step(s) failed:")
        for failure in failures:
            print(f"  {failure}")
        return 1
    print("all steps done")
    return 0
