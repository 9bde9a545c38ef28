"""``kiosk hw test`` on the mock backend: every step shown, and checked on the pins."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from contract.errors import ConfigError
from kiosk.hw import cli
from kiosk.hw.patterns import Lamp, LightPattern
from kiosk.hw.signals import LightSignal, Sound


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kiosk")
    commands = parser.add_subparsers(dest="command", required=True)
    cli.add_parser(commands)
    return parser.parse_args(argv)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text('[gpio]\nbackend = "mock"\nlong_press_s = 0.5\nblue = 5\n')
    return path


def test_the_self_test_has_a_step_for_every_signal_and_sound() -> None:
    assert set(cli.SIGNAL_MEANINGS) | {LightSignal.OFF} == set(LightSignal)
    assert set(cli.SOUND_MEANINGS) == set(Sound)
    assert cli.MAX_REMINDER_LEVEL == 3


def test_the_self_test_cycles_the_lights_sounds_and_button_and_checks_them(
    config_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # every light; three sounds of the seven (each plays seconds; all seven have their own test)
    sounds = (Sound.CARD_DETECTED, Sound.SUCCESS, Sound.REMINDER_2)
    monkeypatch.setattr(cli, "SOUND_MEANINGS", {s: cli.SOUND_MEANINGS[s] for s in sounds})
    args = parse(["hw", "test", "--config", str(config_file), "--step-s", "0.02"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "backend: mock" in out
    for signal in LightSignal:
        if signal is not LightSignal.OFF:
            assert signal.value in out
    assert "blue  (GPIO  5)" in out  # the configured pin, not the default
    for level in (1, 2, 3):
        assert f"card-left reminder {level}" in out
    for sound in sounds:
        assert cli.SOUND_MEANINGS[sound] in out
    assert "short press: staff confirms" in out
    assert "long press: staff mode" in out
    assert "FAILED" not in out
    assert out.rstrip().endswith("all steps done")


def test_the_self_test_notices_lights_that_do_not_do_what_they_should(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # break the devices, not the test: every signal lights red, steadily
    monkeypatch.setattr(
        "kiosk.hw.devices.light_pattern", lambda signal, reminder=0: LightPattern(Lamp.RED)
    )
    monkeypatch.setattr(cli._Run, "SETTLE_S", 0.1)
    monkeypatch.setattr(cli, "MAX_REMINDER_LEVEL", 0)
    monkeypatch.setattr(cli, "SOUND_MEANINGS", {Sound.KEY: "key: a tick"})
    monkeypatch.setattr(
        cli,
        "SIGNAL_MEANINGS",
        {LightSignal.READY: "ready", LightSignal.BUSY: "busy", LightSignal.ERROR: "error"},
    )
    args = parse(["hw", "test", "--config", str(config_file), "--step-s", "0", "--no-button"])
    assert args.handler(args) == 1
    out = capsys.readouterr().out
    failed = out.split("step(s) failed:")[1]
    assert "ready: blue is not steady" in failed
    assert "ready: red lit as well" in failed
    assert "busy: blue is not blinking" in failed
    assert "error:" not in failed  # red, steady, is right for an error


def test_the_self_test_notices_a_buzzer_that_does_not_beep(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("kiosk.hw.devices.Buzzer.play", lambda self, sound: None)
    monkeypatch.setattr(cli._Run, "SETTLE_S", 0.1)
    monkeypatch.setattr(cli, "SIGNAL_MEANINGS", {LightSignal.READY: "ready"})
    monkeypatch.setattr(
        cli,
        "SOUND_MEANINGS",
        {s: cli.SOUND_MEANINGS[s] for s in (Sound.CARD_DETECTED, Sound.SUCCESS)},
    )
    monkeypatch.setattr(cli, "MAX_REMINDER_LEVEL", 0)
    args = parse(["hw", "test", "--config", str(config_file), "--step-s", "0", "--no-button"])
    assert args.handler(args) == 1
    out = capsys.readouterr().out
    assert "card_detected: 0 beeps, not 1" in out
    assert "success: 0 beeps, not 2" in out


def test_backend_on_the_command_line_overrides_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_text('[gpio]\nbackend = "lgpio"\n')
    monkeypatch.setattr(cli, "SIGNAL_MEANINGS", {LightSignal.ERROR: "error"})
    monkeypatch.setattr(cli, "SOUND_MEANINGS", {Sound.KEY: "key: a tick"})
    monkeypatch.setattr(cli, "MAX_REMINDER_LEVEL", 0)
    args = parse(
        ["hw", "test", "--config", str(path), "--backend", "mock", "--step-s", "0", "--no-button"]
    )
    assert args.handler(args) == 0
    assert "backend: mock" in capsys.readouterr().out


def test_a_bad_gpio_section_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_text('[gpio]\nbackend = "mock"\nred = 17\n')
    args = parse(["hw", "test", "--config", str(path)])
    with pytest.raises(ConfigError, match="green and red are both on GPIO 17"):
        args.handler(args)
