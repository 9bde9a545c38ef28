"""[gpio] and [card_left] settings: defaults, and a ConfigError naming the setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from contract.errors import ConfigError
from kiosk.hw.config import GpioConfig, ReminderSchedule, load_gpio_config
from tests.support import PROJECT_ROOT


def test_defaults_are_the_wiring_of_hardware_md() -> None:
    config = GpioConfig.from_mapping(None)
    assert config.pins == {
        "green": 17,
        "amber": 27,
        "red": 22,
        "blue": 23,
        "buzzer": 18,
        "staff_button": 24,
    }
    assert config.backend == "lgpio"
    assert config.button_pull_up
    assert config.leds_active_high
    assert config.buzzer_active_high
    text = (PROJECT_ROOT / "hardware.md").read_text(encoding="utf-8")
    for name, pin in config.pins.items():
        assert f"| {pin} |" in text, f"hardware.md has no row for GPIO {pin} ({name})"


def test_a_full_section_is_read() -> None:
    config = GpioConfig.from_mapping(
        {
            "backend": "mock",
            "chip": 4,
            "green": 5,
            "amber": 6,
            "red": 13,
            "blue": 19,
            "buzzer": 26,
            "staff_button": 16,
            "leds_active_high": False,
            "buzzer_active_high": False,
            "button_pull_up": False,
            "button_bounce_s": 0,
            "long_press_s": 2,
        }
    )
    assert (config.chip, config.blue, config.staff_button) == (4, 19, 16)
    assert not config.leds_active_high
    assert config.long_press_s == 2


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"red": 17}, r"\[gpio\] green and red are both on GPIO 17"),
        ({"buzzer": 24}, r"\[gpio\] buzzer and staff_button are both on GPIO 24"),
        ({"blue": 28}, r"\[gpio\] blue = 28 is not a GPIO of the 40-pin header"),
        ({"blue": -1}, r"\[gpio\] blue = -1 is not a GPIO"),
        ({"green": 0}, r"\[gpio\] green = 0: GPIO 0 and 1 are reserved"),
        ({"green": "17"}, r"\[gpio\] green must be a BCM GPIO number"),
        ({"green": True}, r"\[gpio\] green must be a BCM GPIO number"),
        ({"amber": 27.0}, r"\[gpio\] amber must be a BCM GPIO number"),
        ({"backend": "pigpio"}, r"\[gpio\] backend must be one of lgpio, mock, auto"),
        ({"chip": -1}, r"\[gpio\] chip must be a gpiochip number"),
        ({"chip": "gpiochip0"}, r"\[gpio\] chip must be a gpiochip number"),
        ({"leds_active_high": "yes"}, r"\[gpio\] leds_active_high must be true or false"),
        ({"button_pull_up": 1}, r"\[gpio\] button_pull_up must be true or false"),
        ({"button_bounce_s": 2}, r"\[gpio\] button_bounce_s must be 0 to 0.5 seconds"),
        ({"button_bounce_s": -0.1}, r"\[gpio\] button_bounce_s"),
        ({"long_press_s": 0.1}, r"\[gpio\] long_press_s must be 0.5 to 30 seconds"),
        ({"long_press_s": True}, r"\[gpio\] long_press_s"),
        ({"gren": 17}, r"unknown setting \[gpio\] gren"),
    ],
)
def test_a_bad_gpio_setting_is_a_config_error_naming_it(
    section: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        GpioConfig.from_mapping(section)


def test_a_gpio_section_that_is_not_a_table_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"\[gpio\] must be a table"):
        GpioConfig.from_mapping(17)  # type: ignore[arg-type]


def test_building_the_dataclass_directly_is_checked_too() -> None:
    with pytest.raises(ConfigError, match="both on GPIO 18"):
        GpioConfig(buzzer=18, red=18)


def test_the_gpio_section_is_read_from_the_kiosk_toml(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_text('[outbox]\npath = "x"\n\n[gpio]\nbackend = "mock"\nblue = 5\n')
    config = load_gpio_config(path)
    assert (config.backend, config.blue, config.green) == ("mock", 5, 17)
    path.write_text('[outbox]\npath = "x"\n')
    assert load_gpio_config(path) == GpioConfig()


def test_an_unreadable_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_text("[gpio\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_gpio_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_gpio_config(tmp_path / "missing.toml")


def test_the_reminder_schedule_defaults_and_reading() -> None:
    assert ReminderSchedule.from_mapping(None) == ReminderSchedule((5.0, 15.0, 30.0), 10.0)
    schedule = ReminderSchedule.from_mapping({"remind_after_s": [3, 8, 20], "repeat_s": 4})
    assert schedule.remind_after_s == (3.0, 8.0, 20.0)
    assert schedule.repeat_s == 4


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"remind_after_s": [5, 15]}, r"\[card_left\] remind_after_s must be three numbers"),
        ({"remind_after_s": [5, 15, "30"]}, r"\[card_left\] remind_after_s must be three"),
        ({"remind_after_s": [5, 5, 30]}, r"positive and increasing"),
        ({"remind_after_s": [0, 5, 30]}, r"positive and increasing"),
        ({"remind_after_s": 5}, r"\[card_left\] remind_after_s must be three numbers"),
        ({"repeat_s": 0}, r"\[card_left\] repeat_s must be 1 to 600 seconds"),
        ({"repeat_s": False}, r"\[card_left\] repeat_s"),
        ({"every_s": 3}, r"unknown setting \[card_left\] every_s"),
    ],
)
def test_a_bad_reminder_setting_is_a_config_error_naming_it(
    section: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        ReminderSchedule.from_mapping(section)
