"""The kiosk's TOML configuration, read and checked in one place.

Extends the sections the outbox already reads (:mod:`kiosk.outbox.config`: ``[device]``,
``[server]``, ``[outbox]``, ``[uploader]``) with the kiosk's own, and hands the hardware and
screen sections to their packages' own checks (``GpioConfig.from_mapping``,
``ReminderSchedule.from_mapping``, ``DisplayConfig.from_mapping``)::

    [device]
    certificate = "/etc/onshi-kiosk/device.pem"
    key = "/etc/onshi-kiosk/device.key.pem"

    [server]
    url = "https://clinic.example:8443"
    ca = "/etc/onshi-kiosk/server-ca.pem"
    connect_timeout_s = 3.0        # optional, these are the defaults
    read_timeout_s = 10.0
    challenge_max_age_s = 25.0     # a prefetched challenge older than this is fetched again
    long_poll_s = 10.0             # one long-poll while staff decide a visual check

    [outbox]  [uploader]           # see kiosk.outbox.config

    [reader]
    name = "auto"                  # a PC/SC reader name, or "auto": the first reader there
    command_timeout_s = 5.0        # longest one card command may take

    [pin]
    floor = 2                      # fewest tries left for the kiosk to ask for a PIN (1..3)

    [timeouts]                     # seconds, per state (kiosk.flow.machine.FlowTimeouts)
    idle_s = 300.0
    pin_entry_s = 30.0             # since the last key
    ...

    [card_left]                    # the card-left reminders (kiosk.hw.config)
    [gpio]                         # pins of the lights, buzzer and staff button (kiosk.hw.config)
    [display]  [voice]             # the touch screen and voice guidance (kiosk.ui.config)

    [heartbeat]
    interval_s = 60.0

Relative paths are taken from the file's folder. Every problem is a
:class:`~kiosk.errors.ConfigError` naming the setting; unknown sections and unknown settings of
the kiosk's own sections are refused, so a typo never silently keeps a default.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from kiosk.errors import ConfigError
from kiosk.flow.machine import FlowSettings, FlowTimeouts
from kiosk.hw.config import GpioConfig, ReminderSchedule
from kiosk.outbox.config import OutboxConfig, UploaderConfig, parse_settings
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
    }
)

_SERVER_KEYS = frozenset(
    {"url", "ca", "connect_timeout_s", "read_timeout_s", "challenge_max_age_s", "long_poll_s"}
)


@dataclass(frozen=True)
class ReaderConfig:
    #: the PC/SC reader's name; None: the first reader pcscd reports ("auto")
    name: str | None = None
    command_timeout_s: float = 5.0


@dataclass(frozen=True)
class ServerConfig:
    url: str
    ca: Path
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 10.0
    challenge_max_age_s: float = 25.0
    long_poll_s: float = 10.0


@dataclass(frozen=True)
class KioskConfig:
    """Everything ``kiosk run`` needs, checked."""

    source: Path
    device_certificate: Path
    device_key: Path
    server: ServerConfig
    outbox: OutboxConfig
    uploader: UploaderConfig | None
    reader: ReaderConfig
    flow: FlowSettings
    gpio: GpioConfig
    display: DisplayConfig
    heartbeat_interval_s: float = 60.0


def _table(doc: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}] must be a table")
    return value


def _refuse_unknown(section: str, table: Mapping[str, Any], known: frozenset[str]) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"[{section}] {unknown[0]} is not a known setting (known: {', '.join(sorted(known))})"
        )


def _seconds(
    table: Mapping[str, Any], section: str, key: str, default: float, *, low: float = 0.0
) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > low:
        raise ConfigError(f"[{section}] {key} must be a number of seconds above {low:g}")
    return float(value)


def _path(table: Mapping[str, Any], section: str, key: str, base: Path) -> Path:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"[{section}] {key} must be a path")
    path = Path(value)
    return path if path.is_absolute() else base / path


def _reader(table: Mapping[str, Any]) -> ReaderConfig:
    _refuse_unknown("reader", table, frozenset({"name", "command_timeout_s"}))
    name = table.get("name", "auto")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError('[reader] name must be a reader name or "auto"')
    return ReaderConfig(
        name=None if name.strip() == "auto" else name,
        command_timeout_s=_seconds(table, "reader", "command_timeout_s", 5.0, low=0.0),
    )


def _pin_floor(table: Mapping[str, Any]) -> int:
    _refuse_unknown("pin", table, frozenset({"floor"}))
    floor = table.get("floor", 2)
    if isinstance(floor, bool) or not isinstance(floor, int) or not 1 <= floor <= 3:
        raise ConfigError(
            f"[pin] floor must be 1, 2 or 3 (tries that must be left to ask for a PIN), "
            f"not {floor!r}"
        )
    return floor


def _timeouts(table: Mapping[str, Any]) -> FlowTimeouts:
    names = frozenset(f.name for f in fields(FlowTimeouts))
    _refuse_unknown("timeouts", table, names)
    defaults = FlowTimeouts()
    return FlowTimeouts(
        **{
            name: _seconds(table, "timeouts", name, getattr(defaults, name))
            for name in sorted(names)
        }
    )


def _server(table: Mapping[str, Any], base: Path) -> ServerConfig:
    _refuse_unknown("server", table, _SERVER_KEYS)
    url = table.get("url")
    if not isinstance(url, str) or not url.startswith("https://"):
        raise ConfigError("[server] url must be an https:// URL")
    long_poll = _seconds(table, "server", "long_poll_s", 10.0)
    if long_poll > 25.0:
        raise ConfigError("[server] long_poll_s must be at most 25 seconds (the server's limit)")
    max_age = _seconds(table, "server", "challenge_max_age_s", 25.0)
    if max_age >= 60.0:
        raise ConfigError(
            "[server] challenge_max_age_s must stay below the server's nonce lifetime (60 s)"
        )
    return ServerConfig(
        url=url.rstrip("/"),
        ca=_path(table, "server", "ca", base),
        connect_timeout_s=_seconds(table, "server", "connect_timeout_s", 3.0),
        read_timeout_s=_seconds(table, "server", "read_timeout_s", 10.0),
        challenge_max_age_s=max_age,
        long_poll_s=long_poll,
    )


def parse_config(doc: Mapping[str, Any], source: Path) -> KioskConfig:
    """A checked configuration from a parsed TOML document read from ``source``."""
    base = source.parent
    unknown = sorted(set(doc) - SECTIONS)
    if unknown:
        raise ConfigError(
            f"[{unknown[0]}] is not a known section (known: {', '.join(sorted(SECTIONS))})"
        )
    for name in ("device", "server"):
        if name not in doc:
            raise ConfigError(f"[{name}] is missing")
    device = _table(doc, "device")
    _refuse_unknown("device", device, frozenset({"certificate", "key"}))
    server = _server(_table(doc, "server"), base)
    outbox_settings = parse_settings(dict(doc), base)
    heartbeat = _table(doc, "heartbeat")
    _refuse_unknown("heartbeat", heartbeat, frozenset({"interval_s"}))
    try:
        flow = FlowSettings(
            pin_floor=_pin_floor(_table(doc, "pin")),
            timeouts=_timeouts(_table(doc, "timeouts")),
            reminders=ReminderSchedule.from_mapping(_table(doc, "card_left")),
        )
    except ValueError as exc:  # FlowSettings' own checks; ConfigError is a ValueError too
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc)) from exc
    display_table = _table(doc, "display")
    voice_table = doc.get("voice")
    if voice_table is not None and not isinstance(voice_table, dict):
        raise ConfigError("[voice] must be a table")
    return KioskConfig(
        source=source,
        device_certificate=_path(device, "device", "certificate", base),
        device_key=_path(device, "device", "key", base),
        server=server,
        outbox=outbox_settings.outbox,
        uploader=outbox_settings.uploader,
        reader=_reader(_table(doc, "reader")),
        flow=flow,
        gpio=GpioConfig.from_mapping(_table(doc, "gpio")),
        display=DisplayConfig.from_mapping(display_table, voice_table, base=base),
        heartbeat_interval_s=_seconds(heartbeat, "heartbeat", "interval_s", 60.0, low=1.0),
    )


def load_config(path: Path) -> KioskConfig:
    """Read and check the kiosk's TOML file."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    return parse_config(doc, path.resolve())
