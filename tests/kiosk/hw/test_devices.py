"""Lights, buzzer and staff button on gpiozero's mock pins, with their timing."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import gpiozero
import pytest
from gpiozero.pins.mock import MockFactory, MockPin

from kiosk.hw.devices import Buzzer, StaffButton, StatusLights
from kiosk.hw.patterns import SOUND_PATTERNS, Lamp, light_pattern
from kiosk.hw.signals import LightSignal, Sound
from tests.support.pins import assert_lasted, changes, lasted, wait_for_changes

PINS = {Lamp.GREEN: 17, Lamp.AMBER: 27, Lamp.RED: 22, Lamp.BLUE: 23}


@pytest.fixture
def lights(factory: Any) -> Iterator[StatusLights]:
    lights = StatusLights(
        green=PINS[Lamp.GREEN],
        amber=PINS[Lamp.AMBER],
        red=PINS[Lamp.RED],
        blue=PINS[Lamp.BLUE],
        pin_factory=factory,
    )
    yield lights
    lights.close()


@pytest.fixture
def buzzer(factory: Any) -> Iterator[Buzzer]:
    buzzer = Buzzer(18, pin_factory=factory)
    yield buzzer
    buzzer.close()


def clear(factory: Any, *pins: int) -> None:
    for pin in pins:
        factory.pin(pin).clear_states()


# --- lights ----------------------------------------------------------------------------------


@pytest.mark.parametrize("signal", [s for s in LightSignal if s is not LightSignal.OFF])
def test_each_signal_lights_its_own_lamp_and_no_other(
    lights: StatusLights, factory: Any, signal: LightSignal
) -> None:
    lamp = light_pattern(signal).lamp
    clear(factory, *PINS.values())
    lights.show(signal)
    assert factory.pin(PINS[lamp]).states[1].state is True  # lit at once, blinking or not
    for other, pin in PINS.items():
        if other is not lamp:
            assert changes(factory.pin(pin)) == [], f"{other} changed for {signal}"
    assert lights.signal is signal


def test_off_puts_every_lamp_out(lights: StatusLights, factory: Any) -> None:
    lights.show(LightSignal.BUSY)
    lights.show(LightSignal.OFF)
    assert all(factory.pin(pin).state is False for pin in PINS.values())
    assert lights.lit() == dict.fromkeys(Lamp, False)


class LoggingPin(MockPin):
    """A mock pin that also writes every change to one log shared by all pins, in order."""

    log: ClassVar[list[tuple[int, bool]]] = []

    def _change_state(self, value: bool) -> bool:
        changed: bool = super()._change_state(value)
        if changed and self.function == "output":
            LoggingPin.log.append((int(self.info.name.removeprefix("GPIO")), value))
        return changed


def test_the_old_meaning_goes_out_before_the_new_one_lights() -> None:
    LoggingPin.log = []
    factory = MockFactory(pin_class=LoggingPin)
    lights = StatusLights(green=17, amber=27, red=22, blue=23, pin_factory=factory)
    try:
        steps = [
            LightSignal.READY,
            LightSignal.ELIGIBLE,
            LightSignal.ERROR,
            LightSignal.STAFF_NEEDED,
            LightSignal.READY,
        ]
        for signal in steps:
            LoggingPin.log.clear()
            before = lights.signal
            lights.show(signal)
            old_lamp, new_lamp = light_pattern(before).lamp, light_pattern(signal).lamp
            assert new_lamp is not None
            expected = [(PINS[new_lamp], True)]
            if old_lamp is not None:
                expected.insert(0, (PINS[old_lamp], False))
            assert LoggingPin.log == expected, f"{before} -> {signal}"
    finally:
        lights.close()
        factory.close()


def blink_timing(factory: Any, pin: int, on_s: float, off_s: float, cycles: int = 2) -> None:
    wait_for_changes(factory.pin(pin), 2 * cycles + 1, timeout_s=2 * cycles * (on_s + off_s) + 5)
    history = lasted(factory.pin(pin))[: 2 * cycles]
    assert [state for state, _ in history] == [True, False] * cycles
    for state, seconds in history:
        assert_lasted(seconds, on_s if state else off_s, "on" if state else "off")


def test_busy_blinks_blue_a_quarter_second_on_and_off(lights: StatusLights, factory: Any) -> None:
    lights.show(LightSignal.READY)
    clear(factory, PINS[Lamp.BLUE])
    lights.show(LightSignal.BUSY)
    time.sleep(0.1)
    assert changes(factory.pin(PINS[Lamp.BLUE])) == []  # already lit: the blink goes on lit
    lights.show(LightSignal.OFF)
    clear(factory, PINS[Lamp.BLUE])
    lights.show(LightSignal.BUSY)
    blink_timing(factory, PINS[Lamp.BLUE], 0.25, 0.25)


def test_visual_check_waiting_blinks_amber_half_a_second(
    lights: StatusLights, factory: Any
) -> None:
    clear(factory, PINS[Lamp.AMBER])
    lights.show(LightSignal.VISUAL_CHECK_WAITING)
    blink_timing(factory, PINS[Lamp.AMBER], 0.5, 0.5, cycles=1)


@pytest.mark.parametrize(("level", "half_period"), [(1, 0.4), (2, 0.2), (3, 0.1)])
def test_a_card_left_reminder_after_an_eligible_result_blinks_amber_faster_each_level(
    lights: StatusLights, factory: Any, level: int, half_period: float
) -> None:
    lights.show(LightSignal.OFF)
    clear(factory, *PINS.values())
    lights.show(LightSignal.ELIGIBLE, reminder=level)
    blink_timing(factory, PINS[Lamp.AMBER], half_period, half_period, cycles=1 if level == 1 else 2)
    assert lights.reminder == level
    for lamp in (Lamp.GREEN, Lamp.RED, Lamp.BLUE):
        assert changes(factory.pin(PINS[lamp])) == []


def test_showing_the_same_signal_again_keeps_the_blink_rhythm(
    lights: StatusLights, factory: Any
) -> None:
    clear(factory, PINS[Lamp.BLUE])
    lights.show(LightSignal.BUSY)
    deadline = time.monotonic() + 0.8
    while time.monotonic() < deadline:  # a runner redrawing its state many times a second
        lights.show(LightSignal.BUSY)
        time.sleep(0.03)
    # a restarted blink would cut a dark half short (relit early)
    for state, seconds in lasted(factory.pin(PINS[Lamp.BLUE])):
        assert_lasted(seconds, 0.25, "on" if state else "off")
    assert len(lasted(factory.pin(PINS[Lamp.BLUE]))) >= 2


def test_active_low_leds_are_lit_by_a_low_pin(factory: Any) -> None:
    lights = StatusLights(
        green=17, amber=27, red=22, blue=23, active_high=False, pin_factory=factory
    )
    try:
        lights.show(LightSignal.ERROR)
        assert factory.pin(22).state is False
        assert all(factory.pin(pin).state is True for pin in (17, 27, 23))
        assert lights.lit() == {
            Lamp.GREEN: False,
            Lamp.AMBER: False,
            Lamp.RED: True,
            Lamp.BLUE: False,
        }
    finally:
        lights.close()


def test_closing_the_lights_releases_their_pins(factory: Any) -> None:
    lights = StatusLights(green=17, amber=27, red=22, blue=23, pin_factory=factory)
    lights.show(LightSignal.BUSY)
    lights.close()
    assert all(factory.pin(pin).function == "input" for pin in PINS.values())
    again = gpiozero.LED(23, pin_factory=factory)  # would raise GPIOPinInUse if still held
    again.close()


# --- buzzer ----------------------------------------------------------------------------------


def test_each_sound_plays_its_beeps_with_their_timing(factory: Any) -> None:
    # all at once, each on its own buzzer: the timing of one does not wait for the others
    buzzers = {
        sound: Buzzer(pin, pin_factory=factory) for sound, pin in zip(Sound, FREE_PINS, strict=True)
    }
    try:
        for buzzer in buzzers.values():
            factory.pin(buzzer.pin).clear_states()
        for sound, buzzer in buzzers.items():
            buzzer.play(sound)
        for sound, buzzer in buzzers.items():
            pattern = SOUND_PATTERNS[sound]
            pin = factory.pin(buzzer.pin)
            wait_for_changes(pin, 2 * pattern.n, timeout_s=pattern.duration_s + 5)
        time.sleep(0.05)
        for sound, buzzer in buzzers.items():
            pattern = SOUND_PATTERNS[sound]
            pin = factory.pin(buzzer.pin)
            assert changes(pin) == [True, False] * pattern.n, sound  # and silent at the end
            history = lasted(pin)
            for state, seconds in history:
                assert_lasted(seconds, pattern.on_s if state else pattern.off_s, f"{sound} {state}")
            # late wake-ups add up, but so would a wrong gap
            assert_lasted(sum(s for _, s in history), pattern.duration_s, f"{sound} in all")
    finally:
        for buzzer in buzzers.values():
            buzzer.close()


FREE_PINS = (5, 6, 12, 13, 16, 19, 20)


def test_playing_returns_at_once_even_for_the_longest_sound(buzzer: Buzzer) -> None:
    started = time.monotonic()
    buzzer.play(Sound.REMINDER_3)
    assert time.monotonic() - started < SOUND_PATTERNS[Sound.REMINDER_3].duration_s / 4
    buzzer.silence()


def test_a_new_sound_cuts_off_the_one_still_playing(buzzer: Buzzer, factory: Any) -> None:
    pin = factory.pin(18)
    pin.clear_states()
    buzzer.play(Sound.FAILURE)  # 0.6 s
    time.sleep(0.1)
    buzzer.play(Sound.KEY)  # a 20 ms tick from here on
    wait_for_changes(pin, 2)
    time.sleep(0.05)
    assert changes(pin) == [True, False]
    ((_, sounding),) = lasted(pin)
    assert sounding < 0.1 + 0.02 + 0.3 < SOUND_PATTERNS[Sound.FAILURE].on_s


def test_silence_stops_a_sound_at_once(buzzer: Buzzer, factory: Any) -> None:
    pin = factory.pin(18)
    buzzer.play(Sound.REMINDER_3)
    time.sleep(0.05)
    buzzer.silence()
    assert pin.state is False
    pin.clear_states()
    time.sleep(0.5)
    assert changes(pin) == []


def test_an_active_low_buzzer_sounds_with_a_low_pin(factory: Any) -> None:
    buzzer = Buzzer(18, active_high=False, pin_factory=factory)
    try:
        pin = factory.pin(18)
        assert pin.state is True
        pin.clear_states()
        buzzer.play(Sound.SUCCESS)
        wait_for_changes(pin, 4)
        assert changes(pin) == [False, True, False, True]
    finally:
        buzzer.close()


def test_a_buzzer_needs_a_pattern_for_every_sound(factory: Any) -> None:
    patterns = dict(SOUND_PATTERNS)
    del patterns[Sound.KEY]
    with pytest.raises(ValueError, match="key"):
        Buzzer(18, pin_factory=factory, patterns=patterns)


# --- staff button ----------------------------------------------------------------------------


class Presses:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.event = threading.Event()

    def short(self) -> None:
        self.log.append("short")
        self.event.set()

    def long(self) -> None:
        self.log.append("long")
        self.event.set()

    def wait(self, timeout_s: float) -> bool:
        got = self.event.wait(timeout_s)
        self.event.clear()
        return got


@pytest.fixture
def presses() -> Presses:
    return Presses()


@pytest.fixture
def button(factory: Any, presses: Presses) -> Iterator[StaffButton]:
    button = StaffButton(
        24,
        long_press_s=0.5,
        pin_factory=factory,
        on_press=presses.short,
        on_long_press=presses.long,
    )
    yield button
    button.close()


def test_a_short_press_calls_on_press_when_released(
    button: StaffButton, factory: Any, presses: Presses
) -> None:
    pin = factory.pin(24)
    pin.drive_low()
    assert button.is_pressed
    assert presses.log == []  # nothing until released: it may still become a long press
    pin.drive_high()
    assert presses.wait(2)
    assert presses.log == ["short"]


def test_a_long_press_calls_on_long_press_while_still_held(
    button: StaffButton, factory: Any, presses: Presses
) -> None:
    pin = factory.pin(24)
    started = time.monotonic()
    pin.drive_low()
    assert presses.wait(5)
    held_for = time.monotonic() - started
    assert button.is_pressed
    assert presses.log == ["long"]
    assert_lasted(held_for, 0.5, "the hold before staff mode")
    pin.drive_high()
    time.sleep(0.1)
    assert presses.log == ["long"]  # releasing after a long press is not also a short press


def test_a_press_released_before_the_hold_time_is_short(
    button: StaffButton, factory: Any, presses: Presses
) -> None:
    pin = factory.pin(24)
    pin.drive_low()
    time.sleep(0.2)
    pin.drive_high()
    assert presses.wait(2)
    time.sleep(0.6)  # past the hold time: the hold thread must not fire for a released press
    assert presses.log == ["short"]


def test_each_press_calls_exactly_one_callback(
    button: StaffButton, factory: Any, presses: Presses
) -> None:
    pin = factory.pin(24)
    for kind in ("short", "long", "short", "short", "long"):
        pin.drive_low()
        if kind == "long":
            assert presses.wait(5)
        pin.drive_high()
        if kind == "short":
            assert presses.wait(2)
    time.sleep(0.1)
    assert presses.log == ["short", "long", "short", "short", "long"]


def test_a_broken_handler_is_logged_and_the_next_press_still_counts(
    button: StaffButton, factory: Any, presses: Presses, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise RuntimeError("handler bug")

    button.on_press = broken
    pin = factory.pin(24)
    with caplog.at_level(logging.ERROR, logger="kiosk.hw.devices"):
        pin.drive_low()
        pin.drive_high()
    assert "staff button's press handler failed" in caplog.text
    button.on_press = presses.short
    pin.drive_low()
    pin.drive_high()
    assert presses.wait(2)
    assert presses.log == ["short"]


def test_a_button_wired_to_3v3_is_pressed_when_the_pin_goes_high(
    factory: Any, presses: Presses
) -> None:
    button = StaffButton(
        25, pull_up=False, long_press_s=0.5, pin_factory=factory, on_press=presses.short
    )
    try:
        pin = factory.pin(25)
        pin.drive_high()
        assert button.is_pressed
        pin.drive_low()
        assert presses.wait(2)
        assert presses.log == ["short"]
    finally:
        button.close()


def test_no_callback_set_is_fine(factory: Any) -> None:
    button = StaffButton(24, long_press_s=0.5, pin_factory=factory)
    try:
        pin = factory.pin(24)
        pin.drive_low()
        pin.drive_high()
        assert not button.is_pressed
        assert button.long_press_s == 0.5
    finally:
        button.close()
