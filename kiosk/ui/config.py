"""Settings of the touch screen and its voice guidance, from the kiosk's TOML file.

::

    [display]
    layout = "landscape"          # "landscape": Touch Display 800x480; "portrait": Touch Display 2
    fullscreen = true             # false: a window (the demo on a desktop)
    video_driver = "kmsdrm"       # optional; unset lets SDL pick (the systemd unit sets kmsdrm)
    font_regular = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"   # optional
    font_bold = "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"         # optional

    [voice]
    enabled = true
    volume = 0.8                  # 0..1
    dir = "/usr/share/onshi-kiosk/voice"   # made by `kiosk voice build --out DIR`

Relative paths are taken from ``base`` (the config file's folder). Every problem is a
:class:`~kiosk.errors.ConfigError` naming the setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from contract.errors import ConfigError

LayoutName = Literal["landscape", "portrait"]
LAYOUT_NAMES: tuple[LayoutName, ...] = ("landscape", "portrait")

#: Debian's fonts-noto-cjk: OpenType collections holding the JP, KR, SC, TC and HK faces.
DEFAULT_FONT_REGULAR = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
DEFAULT_FONT_BOLD = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc")
DEFAULT_VOICE_DIR = Path("/usr/share/onshi-kiosk/voice")

_DISPLAY_KEYS = frozenset({"layout", "fullscreen", "video_driver", "font_regular", "font_bold"})
_VOICE_KEYS = frozenset({"enabled", "volume", "dir"})


@dataclass(frozen=True)
class VoiceConfig:
    enabled: bool = True
    #: 0 (silent) .. 1 (full)
    volume: float = 0.8
    #: where ``kiosk voice build`` wrote the WAV files and their manifest
    directory: Path = DEFAULT_VOICE_DIR


@dataclass(frozen=True)
class DisplayConfig:
    layout: LayoutName = "landscape"
    fullscreen: bool = True
    #: an SDL video driver ("kmsdrm", "x11", "dummy"); None lets SDL choose
    video_driver: str | None = None
    font_regular: Path = DEFAULT_FONT_REGULAR
    font_bold: Path = DEFAULT_FONT_BOLD
    voice: VoiceConfig = field(default_factory=VoiceConfig)

    @classmethod
    def from_mapping(
        cls,
        section: Mapping[str, Any],
        voice: Mapping[str, Any] | None = None,
        *,
        base: Path | None = None,
    ) -> DisplayConfig:
        """Build from the ``[display]`` table and the optional ``[voice]`` table.

        A ``voice`` sub-table inside ``section`` is accepted as well, so one mapping can
        carry both. Unknown settings are refused, so a typo never silently falls back.
        """
        display = dict(section)
        nested = display.pop("voice", None)
        if nested is not None:
            if voice is not None:
                raise ConfigError("[voice] is given twice: as a table and inside [display]")
            if not isinstance(nested, Mapping):
                raise ConfigError("[display] voice must be a table")
            voice = nested
        _refuse_unknown("display", display, _DISPLAY_KEYS)
        layout = display.get("layout", "landscape")
        if layout not in LAYOUT_NAMES:
            raise ConfigError(
                f"[display] layout must be one of {', '.join(LAYOUT_NAMES)}, not {layout!r}"
            )
        driver = display.get("video_driver")
        if driver is not None and (not isinstance(driver, str) or not driver.strip()):
            raise ConfigError("[display] video_driver must be a non-empty string")
        return cls(
            layout=layout,
            fullscreen=_bool(display, "display", "fullscreen", default=True),
            video_driver=driver.strip() if isinstance(driver, str) else None,
            font_regular=_path(display, "display", "font_regular", DEFAULT_FONT_REGULAR, base),
            font_bold=_path(display, "display", "font_bold", DEFAULT_FONT_BOLD, base),
            voice=_voice(voice or {}, base),
        )


def _voice(table: Mapping[str, Any], base: Path | None) -> VoiceConfig:
    _refuse_unknown("voice", table, _VOICE_KEYS)
    volume = table.get("volume", VoiceConfig.volume)
    if isinstance(volume, bool) or not isinstance(volume, int | float):
        raise ConfigError("[voice] volume must be a number from 0 to 1")
    if not 0.0 <= float(volume) <= 1.0:
        raise ConfigError(f"[voice] volume must be from 0 to 1, not {volume}")
    return VoiceConfig(
        enabled=_bool(table, "voice", "enabled", default=True),
        volume=float(volume),
        directory=_path(table, "voice", "dir", DEFAULT_VOICE_DIR, base),
    )


def _refuse_unknown(section: str, table: Mapping[str, Any], known: frozenset[str]) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"[{section}] {unknown[0]} is not a known setting")


def _bool(table: Mapping[str, Any], section: str, key: str, *, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"[{section}] {key} must be true or false")
    return value


def _path(
    table: Mapping[str, Any], section: str, key: str, default: Path, base: Path | None
) -> Path:
    value = table.get(key)
    if value is None:
        return default
    if not isinstance(value, str | Path) or not str(value):
        raise ConfigError(f"[{section}] {key} must be a path")
    path = Path(value)
    if not path.is_absolute() and base is not None:
        path = base / path
    return path
