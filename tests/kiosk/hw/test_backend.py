"""build_hardware: the one place that picks the pins, and cleans up after itself."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from contract.errors import ConfigError
from kiosk.hw import backend
from kiosk.hw.backend import build_hardware, lgpio_available, resolve_backend
from kiosk.hw.config import GpioConfig
from kiosk.hw.signals import LightSignal, Sound


def test_the_mock_backend_builds_every_part_on_one_mock_factory() -> None:
    with build_hardware(GpioConfig(backend="mock")) as hw:
        assert hw.backend == "mock"
        assert hw.simulated
        assert isinstance(hw.pin_factory, MockFactory)
        hw.lights.show(LightSignal.ELIGIBLE)
        assert hw.pin_factory.pin(17).state is True
        hw.buzzer.play(Sound.KEY)
        assert hw.button.pin == 24
        assert not hw.button.is_pressed
        assert hw.buzzer.pin == 18


def test_closing_the_hardware_releases_every_pin_and_may_be_repeated() -> None:
    hw = build_hardware(GpioConfig(backend="mock"))
    hw.lights.show(LightSignal.BUSY)
    hw.buzzer.play(Sound.REMINDER_3)
    pins = [hw.pin_factory.pin(n) for n in GpioConfig().pins.values()]
    hw.close()
    assert all(pin.function == "input" for pin in pins)
    hw.close()


def test_auto_simulates_on_a_machine_without_a_gpio_chip(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert not lgpio_available(tmp_path)
    assert resolve_backend(GpioConfig(backend="auto"), dev=tmp_path) == "mock"
    assert "simulated" in caplog.text
    with build_hardware(GpioConfig(backend="auto"), dev=tmp_path) as hw:
        assert hw.backend == "mock"


def test_auto_needs_the_lgpio_module_as_well_as_a_chip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "gpiochip0").touch()
    monkeypatch.setitem(sys.modules, "lgpio", None)  # import lgpio -> ImportError
    monkeypatch.setattr(backend.importlib.util, "find_spec", lambda name: None)
    assert resolve_backend(GpioConfig(backend="auto"), dev=tmp_path) == "mock"


def test_explicit_backends_are_taken_as_they_are(tmp_path: Path) -> None:
    assert resolve_backend(GpioConfig(backend="lgpio"), dev=tmp_path) == "lgpio"
    assert resolve_backend(GpioConfig(backend="mock"), dev=tmp_path) == "mock"


def test_lgpio_without_its_module_is_a_config_error_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "gpiozero.pins.lgpio", None)
    with pytest.raises(ConfigError, match=r"\[gpio\] backend = \"lgpio\".*onshi-kiosk\[pi\]"):
        build_hardware(GpioConfig(backend="lgpio"))


def test_lgpio_that_cannot_open_the_chip_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class NoChipFactory:
        def __init__(self, chip: int | None = None) -> None:
            raise OSError(2, "No such file or directory", f"/dev/gpiochip{chip}")

    module = type(sys)("gpiozero.pins.lgpio")
    module.LGPIOFactory = NoChipFactory  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gpiozero.pins.lgpio", module)
    with pytest.raises(ConfigError, match=r"cannot open /dev/gpiochip4 with lgpio.*gpio group"):
        build_hardware(GpioConfig(backend="lgpio", chip=4))


def test_a_pin_that_cannot_be_set_up_names_the_setting_and_leaves_nothing_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[Any] = []

    def recording_factory(name: str, chip: int | None = None) -> Any:
        made.append(MockFactory())
        return made[-1]

    monkeypatch.setattr(backend, "make_pin_factory", recording_factory)
    # GPIO 3 has a fixed pull-up resistor on the board: a button on it cannot pull down
    config = GpioConfig(backend="mock", staff_button=3, button_pull_up=False)
    with pytest.raises(
        ConfigError, match=r"\[gpio\] staff_button: cannot set up the pin"
    ) as caught:
        build_hardware(config)
    # the traceback keeps build_hardware's locals alive: gpiozero's __del__ cannot close them
    assert caught.tb is not None
    (factory,) = made
    for name in ("green", "amber", "red", "blue", "buzzer"):
        assert factory.pin(config.pins[name]).function == "input", f"{name} left claimed"
