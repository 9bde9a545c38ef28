"""The kiosk's TOML configuration, read and checked in one place.

Reads ``[device]`` and ``[server]`` with the parser the uploader uses too
(:mod:`kiosk.server_config`), ``[outbox]`` and ``[uploader]`` as the uploader does
(:mod:`kiosk.outbox.config`), the kiosk's own sections here, and hands the hardware and screen
sections to their packages' own checks (``GpioConfig.from_mapping``,
``ReminderSchedule.from_mapping``, ``DisplayConfig.from_mapping``)::

    [device]  [server]             # see kiosk.server_config
    [outbox]  [uploader]           # see kiosk.outbox.config

    [reader]
    name = "auto"                  # a PC/SC reader name, or "auto": the first reader there
    command_timeout_s = 5.0        # longest one card command may take

    [pin]
    floor = 2                      # fewest tries left for the kiosk to ask for a PIN (1..3)

    [timeouts]                     # seconds, per state (kiosk.flow.settings.FlowTimeouts)
    idle_s = 300.0
    pin_entry_s = 30.0             # since the last key
    ...

    [card_left]                    # the card-left reminders (kiosk.hw.config)
    [gpio]                         # pins of the lights, buzzer and staff button (kiosk.hw.config)
    [display]  [voice]             # the touch screen and voice guidance (kiosk.ui.config)

    [heartbeat]
    interval_s = 60.0

    [result]
    show_copay_ratio = false       # the result screen shows the copay ratio (10/20/30 %)

Drop-ins in ``kiosk.toml.d/*.toml`` change settings of the main file, merged in name order,
later wins (:mod:`kiosk.config_files`); the merged document is checked as one. Relative paths
are taken from the main file's folder. Every problem is a :class:`~kiosk.errors.ConfigError`
naming the setting and the file that set it; unknown sections and unknown settings of the
kiosk's own sections are refused, so a typo never silently keeps a default. ``kiosk config
--dump`` prints every setting in effect and where it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from contract.errors import ConfigError
from kiosk.config_files import ConfigSources, read_config_files
from kiosk.flow.settings import FlowSettings, FlowTimeouts
from kiosk.hw.config import GpioConfig, ReminderSchedule
from kiosk.outbox.config import OutboxConfig, UploaderConfig, parse_settings
from kiosk.server_config import (
    DeviceConfig,
    ServerConfig,
    refuse_unknown,
    seconds,
    section,
)
from kiosk.ui.config import DisplayConfig

#: Where ``kiosk run`` looks without ``--config``.
DEFAULT_CONFIG = Path("/etc/onshi-kiosk/kiosk.toml")

SECTIONS = frozenset(
    {
        "device",
        "server",
        "outbox",
        "uploader",
        "reader",
        "pin",
        "timeouts",
        "card_left",
        "gpio",
        "display",
        "voice",
        "heartbeat",
        "result",
    }
)


@dataclass(frozen=True)
class ReaderConfig:
    #: the PC/SC reader's name; None: the first reader pcscd reports ("auto")
    name: str | None = None
    command_timeout_s: float = 5.0


@dataclass(frozen=True)
class KioskConfig:
    """Everything ``kiosk run`` needs, checked."""

    source: Path
    device: DeviceConfig
    server: ServerConfig
    outbox: OutboxConfig
    #: the uploader's settings, with the same [server] and [device] as above
    uploader: UploaderConfig
    reader: ReaderConfig
    flow: FlowSettings
    gpio: GpioConfig
    display: DisplayConfig
    heartbeat_interval_s: float = 60.0


def _reader(table: Mapping[str, Any]) -> ReaderConfig:
    refuse_unknown("reader", table, frozenset({"name", "command_timeout_s"}))
    name = table.get("name", "auto")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError('[reader] name must be a reader name or "auto"')
    return ReaderConfig(
        name=None if name.strip() == "auto" else name,
        command_timeout_s=seconds(table, "reader", "command_timeout_s", 5.0, low=0.0),
    )


def _pin_floor(table: Mapping[str, Any]) -> int:
    refuse_unknown("pin", table, frozenset({"floor"}))
    floor = table.get("floor", 2)
    if isinstance(floor, bool) or not isinstance(floor, int) or not 1 <= floor <= 3:
        raise ConfigError(
            f"[pin] floor must be 1, 2 or 3 (tries that must be left to ask for a PIN), "
            f"not {floor!r}"
        )
    return floor


def _show_copay_ratio(table: Mapping[str, Any]) -> bool:
    refuse_unknown("result", table, frozenset({"show_copay_ratio"}))
    value = table.get("show_copay_ratio", False)
    if not isinstance(value, bool):
        raise ConfigError(f"[result] show_copay_ratio must be true or false, not {value!r}")
    return value


def _timeouts(table: Mapping[str, Any]) -> FlowTimeouts:
    names = frozenset(f.name for f in fields(FlowTimeouts))
    refuse_unknown("timeouts", table, names)
    defaults = FlowTimeouts()
    return FlowTimeouts(
        **{
            name: seconds(table, "timeouts", name, getattr(defaults, name))
            for name in sorted(names)
        }
    )


def parse_config(doc: Mapping[str, Any], source: Path) -> KioskConfig:
    """A checked configuration from a parsed TOML document read from ``source``."""
    base = source.parent
    unknown = sorted(set(doc) - SECTIONS)
    if unknown:
        raise ConfigError(
            f"[{unknown[0]}] is not a known section (known: {', '.join(sorted(SECTIONS))})"
        )
    outbox_settings = parse_settings(dict(doc), base)
    uploader = outbox_settings.uploader
    if uploader is None:
        raise ConfigError("[server] is missing")
    heartbeat = section(doc, "heartbeat")
    refuse_unknown("heartbeat", heartbeat, frozenset({"interval_s"}))
    try:
        flow = FlowSettings(
            pin_floor=_pin_floor(section(doc, "pin")),
            timeouts=_timeouts(section(doc, "timeouts")),
            reminders=ReminderSchedule.from_mapping(section(doc, "card_left")),
            show_copay_ratio=_show_copay_ratio(section(doc, "result")),
        )
    except ValueError as exc:  # FlowSettings' own checks; ConfigError is a ValueError too
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc)) from exc
    display_table = section(doc, "display")
    voice_table = doc.get("voice")
    if voice_table is not None and not isinstance(voice_table, dict):
        raise ConfigError("[voice] must be a table")
    return KioskConfig(
        source=source,
        device=uploader.access.device,
        server=uploader.access.server,
        outbox=outbox_settings.outbox,
        uploader=uploader,
        reader=_reader(section(doc, "reader")),
        flow=flow,
        gpio=GpioConfig.from_mapping(section(doc, "gpio")),
        display=DisplayConfig.from_mapping(display_table, voice_table, base=base),
        heartbeat_interval_s=seconds(heartbeat, "heartbeat", "interval_s", 60.0, low=1.0),
    )


def load_config(path: Path) -> KioskConfig:
    """Read and check the kiosk's TOML file and its drop-ins (:mod:`kiosk.config_files`)."""
    return load_config_sources(path)[0]


def load_config_sources(path: Path) -> tuple[KioskConfig, ConfigSources]:
    """The checked configuration, and the merged files it came from (``kiosk config``)."""
    sources = read_config_files(path)
    resolved = path.resolve()
    return sources.checked(lambda doc: parse_config(doc, resolved)), sources
