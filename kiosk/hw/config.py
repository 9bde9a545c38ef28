"""Settings of the lights, buzzer and staff button, and of the card-left reminder.

From the kiosk's TOML file (every setting optional; these are the defaults)::

    [gpio]
    backend = "lgpio"          # "lgpio" (the Pi), "mock" (simulated pins), "auto" (lgpio when
                               # the machine has GPIO and the lgpio module, else mock)
    # chip = 0                 # the /dev/gpiochipN lgpio opens (default: gpiozero's choice)
    green = 17                 # BCM numbers, not physical pin numbers (hardware.md)
    amber = 27
    red = 22
    blue = 23
    buzzer = 18
    staff_button = 24
    leds_active_high = true    # false: LEDs wired from 3.3 V to the pin (pin low = lit)
    buzzer_active_high = true  # false: a PNP driver or a low-side module (pin low = sounding)
    button_pull_up = true      # button between the pin and GND, internal pull-up
    button_bounce_s = 0.05     # 0 = no debouncing
    long_press_s = 3.0         # holding the staff button this long = staff mode

    [card_left]
    remind_after_s = [5, 15, 30]   # reminder levels 1, 2 and 3, seconds after the result
    repeat_s = 10                  # each level's sound repeats this often until the next

Every problem is a ``ConfigError`` naming the setting; unknown settings are refused too, so a
misspelt pin does not silently keep its default.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from contract.errors import ConfigError

BACKENDS = ("lgpio", "mock", "auto")
#: The GPIOs on the 40-pin header a kiosk may use. GPIO 0 and 1 (physical 27 and 28) are the
#: HAT identification EEPROM's I2C bus and stay free.
USABLE_BCM = range(2, 28)
PIN_SETTINGS = ("green", "amber", "red", "blue", "buzzer", "staff_button")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class GpioConfig:
    """Which pins the parts are on and how they are wired; checked when made."""

    backend: str = "lgpio"
    chip: int | None = None
    green: int = 17
    amber: int = 27
    red: int = 22
    blue: int = 23
    buzzer: int = 18
    staff_button: int = 24
    leds_active_high: bool = True
    buzzer_active_high: bool = True
    button_pull_up: bool = True
    button_bounce_s: float = 0.05
    long_press_s: float = 3.0

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(
                f"[gpio] backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}"
            )
        if self.chip is not None and (
            isinstance(self.chip, bool) or not isinstance(self.chip, int) or self.chip < 0
        ):
            raise ConfigError(
                f"[gpio] chip must be a gpiochip number (0, 4, ...), not {self.chip!r}"
            )
        seen: dict[int, str] = {}
        for name in PIN_SETTINGS:
            pin = getattr(self, name)
            if isinstance(pin, bool) or not isinstance(pin, int):
                raise ConfigError(f"[gpio] {name} must be a BCM GPIO number, not {pin!r}")
            if pin in (0, 1):
                raise ConfigError(
                    f"[gpio] {name} = {pin}: GPIO 0 and 1 are reserved for the HAT EEPROM"
                )
            if pin not in USABLE_BCM:
                raise ConfigError(
                    f"[gpio] {name} = {pin} is not a GPIO of the 40-pin header "
                    f"(BCM {USABLE_BCM.start}..{USABLE_BCM.stop - 1})"
                )
            if pin in seen:
                raise ConfigError(f"[gpio] {seen[pin]} and {name} are both on GPIO {pin}")
            seen[pin] = name
        for name in ("leds_active_high", "buzzer_active_high", "button_pull_up"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"[gpio] {name} must be true or false")
        bounce = self.button_bounce_s
        if not _is_number(bounce) or not 0 <= bounce <= 0.5:
            raise ConfigError(f"[gpio] button_bounce_s must be 0 to 0.5 seconds, not {bounce!r}")
        long_press = self.long_press_s
        if not _is_number(long_press) or not 0.5 <= long_press <= 30:
            raise ConfigError(
                f"[gpio] long_press_s must be 0.5 to 30 seconds, not {long_press!r} "
                "(shorter cannot be told from a short press)"
            )

    @property
    def pins(self) -> dict[str, int]:
        """Setting name to BCM number, for every part."""
        return {name: getattr(self, name) for name in PIN_SETTINGS}

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any] | None) -> GpioConfig:
        """The ``[gpio]`` table of the kiosk's TOML file; None or empty gives the defaults."""
        return cls(**_known(section, "gpio", {f.name for f in fields(cls)}))


@dataclass(frozen=True)
class ReminderSchedule:
    """When a card left on the reader is called out, and how often again.

    Level *n* starts ``remind_after_s[n - 1]`` seconds after the result; its sound plays then
    and every ``repeat_s`` seconds until the next level starts. The last level repeats until
    the card is taken.
    """

    remind_after_s: tuple[float, ...] = (5.0, 15.0, 30.0)
    repeat_s: float = 10.0

    def __post_init__(self) -> None:
        after = self.remind_after_s
        if (
            not isinstance(after, tuple | list)
            or len(after) != 3
            or not all(_is_number(t) and math.isfinite(t) for t in after)
        ):
            raise ConfigError("[card_left] remind_after_s must be three numbers of seconds")
        if after[0] <= 0 or any(b <= a for a, b in itertools.pairwise(after)):
            raise ConfigError(
                f"[card_left] remind_after_s must be positive and increasing, not {list(after)}"
            )
        if not _is_number(self.repeat_s) or not 1 <= self.repeat_s <= 600:
            raise ConfigError(
                f"[card_left] repeat_s must be 1 to 600 seconds, not {self.repeat_s!r}"
            )
        object.__setattr__(self, "remind_after_s", tuple(float(t) for t in after))

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any] | None) -> ReminderSchedule:
        """The ``[card_left]`` table; None or empty gives the defaults."""
        values = _known(section, "card_left", {f.name for f in fields(cls)})
        if isinstance(values.get("remind_after_s"), list):
            values["remind_after_s"] = tuple(values["remind_after_s"])
        return cls(**values)


def _known(section: Mapping[str, Any] | None, name: str, allowed: set[str]) -> dict[str, Any]:
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"[{name}] must be a table")
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise ConfigError(
            f"unknown setting [{name}] {unknown[0]} (known: {', '.join(sorted(allowed))})"
        )
    return dict(section)


def load_gpio_config(path: Path) -> GpioConfig:
    """The ``[gpio]`` section of the kiosk's TOML file and its drop-ins (defaults when absent)."""
    from kiosk.config_files import read_config_files

    sources = read_config_files(path)
    return sources.checked(lambda doc: GpioConfig.from_mapping(doc.get("gpio")))
