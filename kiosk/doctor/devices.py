"""The screen, the touch panel, the GPIO chip and the voice files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from contract.self_check import Finding, failed, ok, warning
from kiosk.hw.config import GpioConfig
from kiosk.ui.config import DisplayConfig, VoiceConfig

#: ``INPUT_PROP_DIRECT``: the device's coordinates are the screen's (a touchscreen)
_INPUT_PROP_DIRECT = 1
#: ``ABS_MT_POSITION_X``: a multi-touch panel reports it
_ABS_MT_POSITION_X = 0x35


@dataclass(frozen=True)
class Connector:
    name: str
    mode: str | None


def drm_connectors(sys_root: Path = Path("/sys")) -> tuple[list[str], list[Connector]]:
    """The DRM cards, and their connectors that report a display connected (with the mode)."""
    drm = sys_root / "class/drm"
    cards = sorted(p.name for p in drm.glob("card[0-9]*") if "-" not in p.name)
    connected = []
    for path in sorted(drm.glob("card[0-9]*-*")):
        try:
            status = (path / "status").read_text().strip()
        except OSError:
            continue
        if status != "connected":
            continue
        try:
            modes = (path / "modes").read_text().split()
        except OSError:
            modes = []
        connected.append(Connector(path.name.split("-", 1)[1], modes[0] if modes else None))
    return cards, connected


def _mode(mode: str | None) -> str:
    """``800x480 (landscape)``: the panel's own orientation, next to the configured layout
    (a panel the kernel rotates keeps its native mode, so a difference is not an error)."""
    if mode is None:
        return "no mode"
    width, _, height = mode.partition("x")
    try:
        wide = int(width) >= int(height.rstrip("ip"))
    except ValueError:
        return mode
    return f"{mode} ({'landscape' if wide else 'portrait'})"


def check_display(config: DisplayConfig, sys_root: Path = Path("/sys")) -> Finding:
    name = "display"
    cards, connected = drm_connectors(sys_root)
    layout = f"layout {config.layout}"
    if connected:
        shown = ", ".join(f"{c.name} {_mode(c.mode)}" for c in connected)
        if any(c.mode is None for c in connected):
            return warning(
                name,
                f"{shown}; {layout}",
                "the connector reports no mode: check the display's cable and its overlay "
                "in /boot/firmware/config.txt",
            )
        return ok(name, f"{shown}; {layout}")
    detail = f"no connected display ({'DRM ' + ', '.join(cards) if cards else 'no DRM device'})"
    if config.video_driver in ("dummy", "x11", "wayland"):
        return warning(
            name,
            f"{detail}; the configuration uses SDL's {config.video_driver} driver",
            "expected on a development machine; on a kiosk use kmsdrm and connect the screen",
        )
    return failed(
        name,
        detail,
        "connect the Touch Display's ribbon cable (power off first) and check the display "
        "overlay in /boot/firmware/config.txt",
    )


def _bits(mask: str) -> int:
    """A bitmap as /proc/bus/input/devices prints it (hex words, most significant first)."""
    value = 0
    for word in mask.split():
        value = (value << 64) | int(word, 16)
    return value


@dataclass(frozen=True)
class InputDevice:
    name: str
    handlers: tuple[str, ...]
    touch: bool


def input_devices(proc_root: Path = Path("/proc")) -> list[InputDevice]:
    """The kernel's input devices, and which are touchscreens (direct, absolute)."""
    try:
        text = (proc_root / "bus/input/devices").read_text()
    except OSError:
        return []
    found = []
    for block in text.split("\n\n"):
        name, prop, abs_bits = "", 0, 0
        handlers: tuple[str, ...] = ()
        for line in block.splitlines():
            if line.startswith("N: Name="):
                name = line.partition("=")[2].strip().strip('"')
            elif line.startswith("H: Handlers="):
                handlers = tuple(line.partition("=")[2].split())
            elif line.startswith("B: PROP="):
                prop = _bits(line.partition("=")[2])
            elif line.startswith("B: ABS="):
                abs_bits = _bits(line.partition("=")[2])
        if not name:
            continue
        touch = bool(prop & (1 << _INPUT_PROP_DIRECT)) and bool(
            abs_bits & (1 << _ABS_MT_POSITION_X) or abs_bits & 0b11
        )
        found.append(InputDevice(name, handlers, touch))
    return found


def check_touch(
    proc_root: Path = Path("/proc"), dev_root: Path = Path("/dev"), *, video_driver: str | None
) -> Finding:
    name = "touch"
    touch = [d for d in input_devices(proc_root) if d.touch]
    if not touch:
        advice = "check the display's touch connection; `cat /proc/bus/input/devices`"
        if video_driver in ("dummy", "x11", "wayland"):
            return warning(name, "no touchscreen", "expected on a development machine; " + advice)
        return failed(name, "no touchscreen among the input devices", advice)
    device = touch[0]
    events = [h for h in device.handlers if h.startswith("event")]
    if not events:
        return failed(name, f"{device.name} has no event device", "check the kernel driver")
    node = dev_root / "input" / events[0]
    if not node.exists():
        return failed(name, f"{device.name}: {node} is missing", "check udev")
    if not os.access(node, os.R_OK):
        return failed(
            name,
            f"{device.name}: {node} is not readable by this user",
            "add the kiosk's user to the input group",
        )
    return ok(name, f"{device.name} on {node}")


def check_gpio(config: GpioConfig, dev_root: Path = Path("/dev")) -> Finding:
    import importlib.util

    name = "gpio"
    pins = ", ".join(f"{part} {pin}" for part, pin in config.pins.items())
    chips = sorted(p.name for p in dev_root.glob("gpiochip*"))
    if config.backend == "mock":
        return warning(
            name,
            f"mock pin factory (simulated lights, buzzer and button); pins {pins}",
            'set [gpio] backend = "lgpio" on a kiosk; mock is for demos and tests',
        )
    if not chips:
        if config.backend == "auto":
            return warning(
                name,
                "no /dev/gpiochip*: backend auto falls back to mock pins",
                "expected off a Raspberry Pi; on a kiosk check the kernel's GPIO driver",
            )
        return failed(name, "no /dev/gpiochip* on this machine", "run the kiosk on a Raspberry Pi")
    chip = dev_root / f"gpiochip{config.chip if config.chip is not None else 0}"
    if not chip.exists():
        return failed(name, f"{chip} is missing (chips: {', '.join(chips)})", "fix [gpio] chip")
    if not os.access(chip, os.R_OK | os.W_OK):
        return failed(name, f"{chip} is not usable by this user", "add the user to the gpio group")
    if importlib.util.find_spec("lgpio") is None:
        return failed(
            name,
            "the lgpio module is missing",
            "install the kiosk with its pi extra: pip install 'onshi-kiosk[pi]' (lgpio)",
        )
    return ok(name, f"{chip.name} ({config.backend}); pins {pins}")


def check_voice(config: VoiceConfig) -> Finding:
    from kiosk.flow.screens import Language
    from kiosk.ui.voice import MANIFEST, all_prompts

    name = "voice"
    if not config.enabled:
        return ok(name, "voice guidance is off in the configuration")
    directory = config.directory
    build = f"kiosk voice build --out {directory}"
    if not (directory / MANIFEST).is_file():
        return failed(name, f"{directory} has no {MANIFEST}", f"build the files: {build}")
    wanted = [
        directory / language.value / f"{prompt.name}.wav"
        for language in Language
        for prompt in all_prompts()
    ]
    missing = [p for p in wanted if not p.is_file()]
    if missing:
        return failed(
            name,
            f"{len(missing)} of {len(wanted)} voice files missing "
            f"(first: {missing[0].relative_to(directory)})",
            f"build them: {build}",
        )
    return ok(name, f"{len(wanted)} voice files in {directory}")
