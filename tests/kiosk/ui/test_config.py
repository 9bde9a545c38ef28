"""``[display]`` and ``[voice]``: defaults, every setting, and errors that name the setting."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from contract.errors import ConfigError
from kiosk.ui.config import (
    DEFAULT_FONT_REGULAR,
    DEFAULT_VOICE_DIR,
    DisplayConfig,
    VoiceConfig,
)


def test_defaults_are_the_landscape_panel_fullscreen_with_voice() -> None:
    config = DisplayConfig.from_mapping({})
    assert config == DisplayConfig()
    assert config.layout == "landscape"
    assert config.fullscreen is True
    assert config.video_driver is None
    assert config.font_regular == DEFAULT_FONT_REGULAR
    assert config.voice == VoiceConfig(enabled=True, volume=0.8, directory=DEFAULT_VOICE_DIR)


def test_every_setting_from_toml(tmp_path: Path) -> None:
    doc = tomllib.loads(
        """
        [display]
        layout = "portrait"
        fullscreen = false
        video_driver = "kmsdrm"
        font_regular = "fonts/regular.ttc"
        font_bold = "/opt/fonts/bold.ttc"

        [voice]
        enabled = false
        volume = 0.35
        dir = "voice"
        """
    )
    config = DisplayConfig.from_mapping(doc["display"], doc["voice"], base=tmp_path)
    assert config.layout == "portrait"
    assert config.fullscreen is False
    assert config.video_driver == "kmsdrm"
    assert config.font_regular == tmp_path / "fonts/regular.ttc"
    assert config.font_bold == Path("/opt/fonts/bold.ttc")
    assert config.voice == VoiceConfig(enabled=False, volume=0.35, directory=tmp_path / "voice")


def test_voice_may_sit_inside_the_display_table() -> None:
    config = DisplayConfig.from_mapping({"layout": "portrait", "voice": {"volume": 1}})
    assert config.voice.volume == 1.0
    with pytest.raises(ConfigError, match=r"\[voice\] is given twice"):
        DisplayConfig.from_mapping({"voice": {}}, {"volume": 0.5})


@pytest.mark.parametrize(
    ("display", "voice", "message"),
    [
        ({"layout": "square"}, {}, r"\[display\] layout must be one of landscape, portrait"),
        ({"fullscreen": "yes"}, {}, r"\[display\] fullscreen must be true or false"),
        ({"video_driver": ""}, {}, r"\[display\] video_driver"),
        ({"video_driver": 3}, {}, r"\[display\] video_driver"),
        ({"font_bold": 12}, {}, r"\[display\] font_bold must be a path"),
        ({"layuot": "portrait"}, {}, r"\[display\] layuot is not a known setting"),
        ({}, {"volume": 1.5}, r"\[voice\] volume must be from 0 to 1"),
        ({}, {"volume": -0.1}, r"\[voice\] volume must be from 0 to 1"),
        ({}, {"volume": True}, r"\[voice\] volume must be a number"),
        ({}, {"volume": "loud"}, r"\[voice\] volume must be a number"),
        ({}, {"enabled": 1}, r"\[voice\] enabled must be true or false"),
        ({}, {"dir": ""}, r"\[voice\] dir must be a path"),
        ({}, {"speed": 2}, r"\[voice\] speed is not a known setting"),
        ({"voice": "on"}, None, r"\[display\] voice must be a table"),
    ],
)
def test_a_bad_setting_is_refused_by_name(
    display: dict[str, Any], voice: dict[str, Any] | None, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        DisplayConfig.from_mapping(display, voice)
