"""The kiosk's TOML file: every section checked, every problem one clear line naming the
setting, and ``kiosk run`` exits non-zero with that line."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from contract.errors import ConfigError
from kiosk.config import load_config, parse_config

GOOD = """
[device]
certificate = "device.pem"
key = "device.key.pem"

[server]
url = "https://clinic.example:8443/"
ca = "/etc/onshi-kiosk/server-ca.pem"

[outbox]
path = "/var/lib/onshi-kiosk/outbox.db"
public_key = "outbox-key.json"

[reader]
name = "ACS ACR1252 Dual Reader [ACR1252 Dual Reader PICC] 00 00"
command_timeout_s = 4

[pin]
floor = 3

[timeouts]
pin_entry_s = 45
after_removal_s = 3.5

[card_left]
remind_after_s = [10, 20, 40]

[gpio]
backend = "mock"
green = 5

[display]
layout = "portrait"

[voice]
enabled = false

[heartbeat]
interval_s = 30
"""


def parse(text: str, tmp_path: Path):
    return parse_config(tomllib.loads(text), tmp_path / "kiosk.toml")


def test_a_complete_file_gives_every_setting(tmp_path: Path) -> None:
    config = parse(GOOD, tmp_path)
    assert config.device.certificate == tmp_path / "device.pem"
    assert config.server.url == "https://clinic.example:8443"
    assert config.server.challenge_max_age_s == 25.0
    assert config.outbox.public_key == tmp_path / "outbox-key.json"
    assert config.reader.name.startswith("ACS ACR1252")
    assert config.reader.command_timeout_s == 4.0
    assert config.flow.pin_floor == 3
    assert config.flow.timeouts.pin_entry_s == 45.0
    assert config.flow.timeouts.after_removal_s == 3.5
    assert config.flow.timeouts.idle_s == 300.0, "unset timeouts keep their defaults"
    assert config.flow.reminders.remind_after_s == (10.0, 20.0, 40.0)
    assert config.gpio.green == 5
    assert config.gpio.backend == "mock"
    assert config.display.layout == "portrait"
    assert config.display.voice.enabled is False
    assert config.heartbeat_interval_s == 30.0
    assert config.uploader.access.server is config.server, "one [server] for both programs"


def test_auto_reader_and_defaults(tmp_path: Path) -> None:
    text = GOOD.replace('name = "ACS ACR1252 Dual Reader [ACR1252 Dual Reader PICC] 00 00"', "")
    text = text.replace("[pin]\nfloor = 3", "")
    config = parse(text, tmp_path)
    assert config.reader.name is None
    assert config.flow.pin_floor == 2


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ("[pin]\nfloor = 3", "[pin]\nfloor = 0", "[pin] floor"),
        ("[pin]\nfloor = 3", '[pin]\nfloor = "2"', "[pin] floor"),
        ("[pin]\nfloor = 3", "[pin]\nfloor = true", "[pin] floor"),
        ("[pin]\nfloor = 3", "[pin]\nflor = 2", "[pin] flor"),
        ("pin_entry_s = 45", "pin_entry_s = -1", "[timeouts] pin_entry_s"),
        ("pin_entry_s = 45", 'pin_entry_s = "soon"', "[timeouts] pin_entry_s"),
        ("pin_entry_s = 45", "pin_entery_s = 45", "[timeouts] pin_entery_s"),
        ("command_timeout_s = 4", "command_timeout_s = 0", "[reader] command_timeout_s"),
        ('url = "https://clinic.example:8443/"', 'url = "http://clinic"', "[server] url"),
        ('url = "https://clinic.example:8443/"', "url = 8443", "[server] url"),
        ("[heartbeat]\ninterval_s = 30", "[heartbeat]\ninterval_s = 0.5", "[heartbeat]"),
        ("[server]\n", "[server]\nchallenge_max_age_s = 90\n", "[server] challenge_max_age_s"),
        ("[server]\n", "[server]\nlong_poll_s = 60\n", "[server] long_poll_s"),
        ("[server]\n", "[server]\nproxy = 1\n", "[server] proxy"),
        ('ca = "/etc/onshi-kiosk/server-ca.pem"', "", "[server] ca"),
        ('key = "device.key.pem"', "", "[device] key"),
        ("green = 5", "green = 1", "[gpio] green"),
        ("green = 5", "green = 27", "[gpio]"),
        ('layout = "portrait"', 'layout = "diagonal"', "[display] layout"),
        ("enabled = false", "enabled = 0", "[voice] enabled"),
        ("remind_after_s = [10, 20, 40]", "remind_after_s = [10, 5, 40]", "[card_left]"),
        ("[heartbeat]", "[heartbeats]", "[heartbeats]"),
        ("[outbox]", "[outbx]", "[outbx]"),
    ],
)
def test_a_broken_setting_is_a_config_error_naming_it(
    tmp_path: Path, old: str, new: str, named: str
) -> None:
    assert old in GOOD
    with pytest.raises(ConfigError) as caught:
        parse(GOOD.replace(old, new), tmp_path)
    message = str(caught.value)
    assert named in message
    assert "\n" not in message


@pytest.mark.parametrize("section", ["device", "server", "outbox"])
def test_a_missing_required_section_is_named(tmp_path: Path, section: str) -> None:
    lines = GOOD.split("\n\n")
    text = "\n\n".join(block for block in lines if not block.strip().startswith(f"[{section}]"))
    with pytest.raises(ConfigError, match=rf"\[{section}\]"):
        parse(text, tmp_path)


def test_unreadable_and_malformed_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[server\nurl = ", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)


def kiosk_run(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"},
    )


def test_kiosk_run_with_a_broken_setting_says_one_line_and_fails(tmp_path: Path) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_text(GOOD.replace("floor = 3", "floor = 7"), encoding="utf-8")
    out = kiosk_run(config)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"kiosk: {config}: [pin] floor")


def test_kiosk_run_with_missing_device_files_says_one_line_and_fails(tmp_path: Path) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_text(GOOD, encoding="utf-8")
    out = kiosk_run(config)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "device identity" in lines[0]
