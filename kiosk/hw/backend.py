"""The one place that chooses real or simulated pins and builds the kiosk's GPIO parts.

``[gpio] backend``:

- ``"lgpio"``: the Raspberry Pi, through gpiozero's lgpio factory (the lgpio module: the
  project's ``pi`` extra, which the Raspberry Pi image installs). A missing module or GPIO
  chip is a ``ConfigError`` at start, never a silent fallback.
- ``"mock"``: gpiozero's ``MockFactory``. The same classes drive mock pins that record their
  history, for tests and for the demo on a PC.
- ``"auto"``: lgpio when this machine has a ``/dev/gpiochip*`` and the lgpio module, mock
  otherwise (logged). For developers' machines; the kiosk's own file says ``lgpio``.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import gpiozero
from gpiozero.pins.mock import MockFactory, MockPin

from contract.errors import ConfigError
from kiosk.hw.config import GpioConfig
from kiosk.hw.devices import Buzzer, StaffButton, StatusLights

log = logging.getLogger(__name__)

LGPIO_HINT = (
    "on a Raspberry Pi: install the kiosk with its pi extra (pip install 'onshi-kiosk[pi]', "
    'which brings lgpio); elsewhere set [gpio] backend = "mock"'
)


def lgpio_available(dev: Path = Path("/dev")) -> bool:
    """True when this machine has a GPIO character device and the lgpio module is importable."""
    return any(dev.glob("gpiochip*")) and importlib.util.find_spec("lgpio") is not None


def resolve_backend(config: GpioConfig, dev: Path = Path("/dev")) -> str:
    """``"lgpio"`` or ``"mock"``: what ``config.backend`` means on this machine."""
    if config.backend != "auto":
        return config.backend
    if lgpio_available(dev):
        return "lgpio"
    log.warning("no GPIO on this machine (or no lgpio module): the lights and buzzer are simulated")
    return "mock"


def make_pin_factory(backend: str, chip: int | None = None) -> Any:
    """A new gpiozero pin factory for a resolved backend (``"lgpio"`` or ``"mock"``)."""
    if backend == "mock":
        # pin_class explicitly: GPIOZERO_MOCK_PIN_CLASS in the environment must not change it
        return MockFactory(pin_class=MockPin)
    if backend != "lgpio":
        raise ConfigError(f"[gpio] backend {backend!r} is not lgpio or mock")
    try:
        # importing lgpio opens its notification pipe in the working directory (or $LG_WD)
        from gpiozero.pins.lgpio import LGPIOFactory
    except ImportError as exc:
        raise ConfigError(f'[gpio] backend = "lgpio" but {exc}: {LGPIO_HINT}') from exc
    except OSError as exc:
        raise ConfigError(
            f"[gpio] lgpio cannot create its notification pipe ({exc}): run from a writable "
            "working directory or set LG_WD to one"
        ) from exc
    try:
        return LGPIOFactory(chip=chip)
    except Exception as exc:
        # lgpio.error, gpiozero's PinUnknownPi, OSError: all mean "no usable GPIO chip here"
        where = f"/dev/gpiochip{chip}" if chip is not None else "the GPIO chip"
        raise ConfigError(
            f"[gpio] cannot open {where} with lgpio: {exc} (is the user in the gpio group?)"
        ) from exc


@dataclass
class Hardware:
    """The kiosk's GPIO parts, built on one pin factory; :meth:`close` releases everything."""

    lights: StatusLights
    buzzer: Buzzer
    button: StaffButton
    pin_factory: Any
    #: ``"lgpio"`` or ``"mock"``, after ``auto`` was resolved
    backend: str

    @property
    def simulated(self) -> bool:
        return self.backend == "mock"

    def close(self) -> None:
        """Lights out, buzzer silent, every pin released; safe to call twice."""
        for part in (self.button, self.buzzer, self.lights):
            try:
                part.close()
            except Exception:
                log.exception("closing %s failed", type(part).__name__)
        self.pin_factory.close()

    def __enter__(self) -> Hardware:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def build_hardware(config: GpioConfig, *, dev: Path = Path("/dev")) -> Hardware:
    """The lights, buzzer and staff button of ``config``, on the backend it names.

    Raises ``ConfigError`` when the backend cannot start or a pin cannot be set up (in use,
    a fixed pull resistor, ...), naming the setting; nothing stays open after a failure.
    """
    backend = resolve_backend(config, dev)
    factory = make_pin_factory(backend, config.chip)
    built: list[Any] = []
    setting = "green, amber, red, blue"
    try:
        lights = StatusLights(
            green=config.green,
            amber=config.amber,
            red=config.red,
            blue=config.blue,
            active_high=config.leds_active_high,
            pin_factory=factory,
        )
        built.append(lights)
        setting = "buzzer"
        buzzer = Buzzer(config.buzzer, active_high=config.buzzer_active_high, pin_factory=factory)
        built.append(buzzer)
        setting = "staff_button"
        button = StaffButton(
            config.staff_button,
            pull_up=config.button_pull_up,
            bounce_s=config.button_bounce_s,
            long_press_s=config.long_press_s,
            pin_factory=factory,
        )
    except _pin_errors() as exc:
        _close_all(built, factory)
        raise ConfigError(
            f"[gpio] {setting}: cannot set up the pin ({exc}); is another process "
            "(onshi-kiosk.service) using it?"
        ) from exc
    except BaseException:
        _close_all(built, factory)
        raise
    return Hardware(lights, buzzer, button, factory, backend)


def _pin_errors() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (gpiozero.GPIOZeroError, OSError)
    lgpio = sys.modules.get("lgpio")  # its error class derives from Exception only
    if lgpio is not None:
        errors += (lgpio.error,)
    return errors


def _close_all(parts: list[Any], factory: Any) -> None:
    for part in reversed(parts):
        part.close()
    factory.close()
