"""``kiosk config``: check the configuration, and ``--dump`` what is in effect and from where.

::

    kiosk config [--config /etc/onshi-kiosk/kiosk.toml]   # check: the files read, or the error
    kiosk config --dump [--json]                           # every setting, with its source

The dump is the configuration the kiosk would run with: the main file and its drop-ins
merged and checked (:mod:`kiosk.config_files`), every setting of every section with its value
as the kiosk reads it (relative paths made absolute, ``"auto"`` for a reader found at run
time) and the file it came from, or ``default``. The configuration holds no secret (key files
are named, never read here), so the whole of it may be shown.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import tomli_w

from kiosk.config import DEFAULT_CONFIG, KioskConfig, load_config_sources
from kiosk.config_files import ConfigSources

DEFAULT = "default"


def effective_settings(config: KioskConfig) -> dict[str, dict[str, Any]]:
    """Every setting in effect, by section and name as the TOML file spells them.

    None: the setting is unset (SDL chooses the video driver, gpiozero the chip...).
    """
    up = config.uploader
    policy = up.policy
    flow = config.flow
    display = config.display
    voice = display.voice
    return {
        "device": {"certificate": config.device.certificate, "key": config.device.key},
        "server": {
            # the spelling of the file: url for one server, urls for several
            **(
                {"url": config.server.url}
                if len(config.server.urls) == 1
                else {"urls": config.server.urls}
            ),
            "ca": config.server.ca,
            "connect_timeout_s": config.server.connect_timeout_s,
            "read_timeout_s": config.server.read_timeout_s,
            "challenge_max_age_s": config.server.challenge_max_age_s,
            "long_poll_s": config.server.long_poll_s,
        },
        "outbox": {
            "path": config.outbox.path,
            "public_key": config.outbox.public_key,
            "max_bytes": config.outbox.max_bytes,
            "warn_fraction": config.outbox.warn_fraction,
        },
        "uploader": {
            "batch_max_records": policy.batch_max_records,
            "batch_max_bytes": policy.batch_max_bytes,
            "batch_max_age_s": policy.batch_max_age_s,
            "backoff_base_s": policy.backoff_base_s,
            "backoff_cap_s": policy.backoff_cap_s,
            "retry_after_cap_s": policy.retry_after_cap_s,
            "state_file": up.state_file,
        },
        "reader": {
            "name": config.reader.name or "auto",
            "command_timeout_s": config.reader.command_timeout_s,
        },
        "pin": {"floor": flow.pin_floor},
        "timeouts": {f.name: getattr(flow.timeouts, f.name) for f in fields(flow.timeouts)},
        "card_left": {
            "remind_after_s": list(flow.reminders.remind_after_s),
            "repeat_s": flow.reminders.repeat_s,
        },
        "gpio": {f.name: getattr(config.gpio, f.name) for f in fields(config.gpio)},
        "display": {
            "layout": display.layout,
            "fullscreen": display.fullscreen,
            "video_driver": display.video_driver,
            "font_regular": display.font_regular,
            "font_bold": display.font_bold,
        },
        "voice": {"enabled": voice.enabled, "volume": voice.volume, "dir": voice.directory},
        "heartbeat": {"interval_s": config.heartbeat_interval_s},
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def dump(config: KioskConfig, sources: ConfigSources) -> dict[str, Any]:
    """The dump as data: the files read, and each setting's value and source."""
    settings: dict[str, dict[str, dict[str, Any]]] = {}
    for section, values in effective_settings(config).items():
        settings[section] = {}
        for name, value in values.items():
            origin = sources.origin(section, name)
            settings[section][name] = {
                "value": _plain(value),
                "source": str(origin) if origin is not None else DEFAULT,
            }
    return {"files": [str(p) for p in sources.files], "settings": settings}


def _toml_value(value: Any) -> str:
    """``value`` as TOML on one line (tomli-w writes arrays over several)."""
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return tomli_w.dumps({"v": value}).strip().removeprefix("v = ")


def dump_text(data: dict[str, Any]) -> str:
    """The dump as TOML, each setting followed by its source as a comment."""
    lines = ["# the configuration in effect, from these files in this order:"]
    lines += [f"#   {path}" for path in data["files"]]
    for section, values in data["settings"].items():
        lines += ["", f"[{section}]"]
        rows = []
        for name, entry in values.items():
            value = entry["value"]
            unset = value is None
            text = f"# {name} is unset" if unset else f"{name} = {_toml_value(value)}"
            rows.append((text, entry["source"]))
        width = min(48, max(len(text) for text, _ in rows))
        lines += [f"{text:<{width}}  # {source}" for text, source in rows]
    return "\n".join(lines) + "\n"


def run_config(args: argparse.Namespace) -> int:
    config, sources = load_config_sources(args.config)
    if args.dump:
        data = dump(config, sources)
        if args.json:
            print(json.dumps(data, indent=2, ensure_ascii=False))
        else:
            print(dump_text(data), end="")
        return 0
    print(f"{args.config}: ok ({len(sources.files)} files: {', '.join(map(str, sources.files))})")
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "config",
        help="check the configuration; --dump: every setting in effect and where it came from",
        description="Reads the kiosk's TOML file and the drop-ins in FILE.d/*.toml (name "
        "order, later wins), checks them as one and says which file a problem is in.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help=f"the kiosk's TOML file (default {DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "--dump", action="store_true", help="print every setting, its value and its source"
    )
    parser.add_argument("--json", action="store_true", help="with --dump: as JSON")
    parser.set_defaults(handler=run_config)
