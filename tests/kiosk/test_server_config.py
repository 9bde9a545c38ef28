"""``[server]`` and ``[device]``: one parser for the appliance and the uploader, the timeouts
included, and every problem one line naming the setting, whichever program reads the file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import cast

import httpx
import pytest

from contract.device_signing import DeviceIdentity
from contract.errors import ConfigError
from kiosk.clinic_client import open_clinic_client
from kiosk.config import parse_config
from kiosk.outbox.config import parse_settings
from kiosk.server_config import DeviceConfig, ServerConfig, parse_server_access

FILE = """
[device]
certificate = "device.pem"
key = "/etc/onshi-kiosk/device.key.pem"

[server]
url = "https://clinic.example:8443/"
ca = "server-ca.pem"
connect_timeout_s = 1.5
read_timeout_s = 7

[outbox]
path = "outbox.db"
public_key = "outbox-key.json"
"""


def doc(text: str = FILE) -> dict:
    return tomllib.loads(text)


def test_both_sections_with_paths_from_the_file_s_folder_and_the_timeouts(tmp_path: Path) -> None:
    access = parse_server_access(doc(), tmp_path)
    assert access.server.url == "https://clinic.example:8443"
    assert access.server.ca == tmp_path / "server-ca.pem"
    assert access.device.certificate == tmp_path / "device.pem"
    assert access.device.key == Path("/etc/onshi-kiosk/device.key.pem")
    assert access.server.timeout == httpx.Timeout(connect=1.5, read=7.0, write=7.0, pool=1.5)


def test_defaults() -> None:
    server = ServerConfig("https://clinic.example", Path("ca.pem"))
    assert server.timeout == httpx.Timeout(connect=3.0, read=10.0, write=10.0, pool=3.0)
    assert (server.challenge_max_age_s, server.long_poll_s) == (25.0, 10.0)


def test_the_appliance_and_the_uploader_read_the_same_settings(tmp_path: Path) -> None:
    appliance = parse_config(doc(), tmp_path / "kiosk.toml")
    uploader = parse_settings(doc(), tmp_path).uploader
    assert uploader is not None
    assert uploader.access == parse_server_access(doc(), tmp_path)
    assert (appliance.server, appliance.device) == (uploader.access.server, uploader.access.device)


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ("read_timeout_s = 7", "read_timeout_s = 0", "[server] read_timeout_s"),
        ("connect_timeout_s = 1.5", 'connect_timeout_s = "3"', "[server] connect_timeout_s"),
        ("connect_timeout_s = 1.5", "conect_timeout_s = 1.5", "[server] conect_timeout_s"),
        ('url = "https://clinic.example:8443/"', 'url = "http://clinic"', "[server] url"),
        ('ca = "server-ca.pem"', "", "[server] ca"),
        ('certificate = "device.pem"', "certificate = 7", "[device] certificate"),
        ('certificate = "device.pem"', 'cert = "device.pem"', "[device] cert"),
        ("[device]", "[devices]", "[device] is missing"),
    ],
)
def test_a_broken_setting_is_named_in_one_line_by_both_programs(
    tmp_path: Path, old: str, new: str, named: str
) -> None:
    assert old in FILE
    text = FILE.replace(old, new)
    for parse in (
        lambda: parse_server_access(doc(text), tmp_path),
        lambda: parse_settings(doc(text), tmp_path),
    ):
        with pytest.raises(ConfigError) as caught:
            parse()
        assert named in str(caught.value)
        assert "\n" not in str(caught.value)


def test_a_missing_server_ca_file_is_named_with_its_setting(tmp_path: Path) -> None:
    missing = tmp_path / "server-ca.pem"
    server = ServerConfig(url="https://127.0.0.1:8443", ca=missing)
    device = DeviceConfig(certificate=tmp_path / "device.pem", key=tmp_path / "device.key.pem")
    with pytest.raises(ConfigError, match=rf"\[server\] ca: no such file {missing}"):
        open_clinic_client(server, device, cast(DeviceIdentity, None))
