"""The kiosk's file and its drop-ins: merged in name order, checked as one, a problem named
with its file and setting, and ``kiosk config --dump`` saying where each value came from."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import tomli_w
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from contract.errors import ConfigError
from kiosk.cli import main
from kiosk.config import load_config, load_config_sources
from kiosk.config_cli import dump, dump_text, effective_settings
from kiosk.config_files import drop_in_folder
from kiosk.hw.config import load_gpio_config
from kiosk.outbox.config import load_settings
from tests.support import PROJECT_ROOT

EXAMPLE = PROJECT_ROOT / "examples" / "kiosk.toml"

MAIN = """
[device]
certificate = "device.pem"
key = "device.key.pem"

[server]
url = "https://clinic.example:8443"
ca = "server-ca.pem"

[outbox]
path = "/var/lib/onshi-kiosk/outbox.db"
public_key = "outbox-key.json"

[gpio]
backend = "mock"
amber = 27

[display]
layout = "landscape"
"""


@pytest.fixture
def main_file(tmp_path: Path) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(MAIN, encoding="utf-8")
    drop_in_folder(path).mkdir()
    return path


def drop_in(main_file: Path, name: str, text: str) -> Path:
    path = drop_in_folder(main_file) / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_example_and_its_drop_in_load() -> None:
    config, sources = load_config_sources(EXAMPLE)
    (extra,) = sources.files[1:]
    assert extra.name == "50-counter-2.toml"
    assert config.reader.name == "ACS ACR1252 Dual Reader [ACR1252 Dual Reader PICC] 00 00"
    assert config.display.layout == "portrait"
    assert config.gpio.leds_active_high is False
    assert config.display.voice.volume == 0.5
    assert config.display.voice.enabled is True  # the main file's, untouched by the drop-in
    assert config.flow.pin_floor == 2
    # relative paths of every file are the main file's folder's
    assert config.device.certificate == EXAMPLE.parent.resolve() / "device.pem"
    assert load_settings(EXAMPLE).uploader is not None
    assert load_gpio_config(EXAMPLE).leds_active_high is False


def test_drop_ins_apply_in_name_order_setting_by_setting(main_file: Path) -> None:
    drop_in(main_file, "20-later.toml", "[gpio]\namber = 5\n")
    drop_in(main_file, "10-earlier.toml", "[gpio]\namber = 6\nred = 13\n")
    drop_in(main_file, "30-notes.txt", "[gpio]\namber = 1\n")  # not .toml: ignored
    drop_in(main_file, ".40-swap.toml", "this is not TOML")  # hidden: ignored
    config = load_config(main_file)
    assert (config.gpio.amber, config.gpio.red, config.gpio.backend) == (5, 13, "mock")
    # the uploader and `kiosk hw test` read the same merged document
    assert load_gpio_config(main_file) == config.gpio
    settings = load_settings(main_file)
    assert settings.outbox.path == Path("/var/lib/onshi-kiosk/outbox.db")


def test_no_drop_in_folder_is_just_the_file(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_text(MAIN, encoding="utf-8")
    assert load_config_sources(path)[1].files == [path]


def test_a_drop_in_that_is_not_toml_is_named_with_its_line(main_file: Path) -> None:
    broken = drop_in(main_file, "50-broken.toml", "[gpio]\namber = \n")
    with pytest.raises(ConfigError) as caught:
        load_config(main_file)
    assert str(caught.value).startswith(f"{broken} is not valid TOML")
    assert "line 2" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[gpio]\namber = 1\n", "[gpio] amber = 1: GPIO 0 and 1 are reserved"),
        ("[gpio]\nambre = 5\n", "[gpio] ambre"),
        ("[pin]\nfloor = 7\n", "[pin] floor must be 1, 2 or 3"),
        ("[server]\nurl = 'http://clinic.example'\n", "[server] url must be an https:// URL"),
        ("[voice]\nvolume = 2\n", "[voice] volume must be from 0 to 1"),
        ("[readers]\nname = 'x'\n", "[readers] is not a known section"),
    ],
)
def test_a_broken_setting_in_a_drop_in_names_the_file_and_the_setting(
    main_file: Path, text: str, names: str
) -> None:
    drop_in(main_file, "10-fine.toml", "[reader]\nname = 'auto'\n")
    broken = drop_in(main_file, "50-site.toml", text)
    drop_in(main_file, "90-fine.toml", "[display]\nfullscreen = false\n")
    with pytest.raises(ConfigError) as caught:
        load_config(main_file)
    message = str(caught.value)
    assert message.startswith(f"{broken}: "), message
    assert names in message


def test_a_broken_setting_of_the_main_file_names_the_main_file(main_file: Path) -> None:
    drop_in(main_file, "50-site.toml", "[gpio]\nred = 13\n")
    main_file.write_text(MAIN.replace("amber = 27", "amber = 99"), encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{main_file}: \[gpio\] amber = 99"):
        load_config(main_file)


def test_a_table_is_a_table_in_every_file(main_file: Path) -> None:
    broken = drop_in(main_file, "50-site.toml", 'gpio = "mock"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(main_file)
    assert str(caught.value) == (
        f"{broken}: [gpio] must be a table, as in {main_file}, not a single value"
    )
    broken.write_text("[gpio.amber]\npin = 5\n")
    with pytest.raises(ConfigError, match=rf"^{broken}: \[gpio\] amber must be a setting"):
        load_config(main_file)


def test_the_dump_gives_each_setting_its_value_and_source(main_file: Path) -> None:
    site = drop_in(
        main_file, "50-site.toml", "[gpio]\namber = 5\n\n[display.voice]\nvolume = 0.3\n"
    )
    config, sources = load_config_sources(main_file)
    data = dump(config, sources)
    assert data["files"] == [str(main_file), str(site)]
    settings = data["settings"]
    assert settings["gpio"]["amber"] == {"value": 5, "source": str(site)}
    assert settings["gpio"]["backend"] == {"value": "mock", "source": str(main_file)}
    assert settings["gpio"]["green"] == {"value": 17, "source": "default"}
    assert settings["gpio"]["chip"] == {"value": None, "source": "default"}
    assert settings["voice"]["volume"] == {"value": 0.3, "source": str(site)}
    assert settings["reader"]["name"] == {"value": "auto", "source": "default"}
    assert settings["device"]["key"]["value"] == str(main_file.parent.resolve() / "device.key.pem")


def test_every_dumped_setting_is_one_the_kiosk_reads(tmp_path: Path, main_file: Path) -> None:
    """Written back as a file of its own, the dump loads to the same configuration: it names
    every setting by the name the parsers accept, and leaves none out."""
    config = load_config(main_file)
    everything = effective_settings(config)
    doc = {
        section: {
            k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
            for k, v in values.items()
            if v is not None
        }
        for section, values in everything.items()
    }
    again = tmp_path / "again" / "kiosk.toml"
    again.parent.mkdir()
    again.write_text(tomli_w.dumps(doc), encoding="utf-8")
    config_again, sources = load_config_sources(again)
    assert effective_settings(config_again) == everything
    unset = {(s, k) for s, values in everything.items() for k, v in values.items() if v is None}
    assert {(s, k) for s, values in everything.items() for k in values} - unset == {
        key[:2] for key in sources.origins
    }
    assert set(tomllib.loads(again.read_text())) == set(everything)


def test_kiosk_config_dump_prints_sources_and_never_a_key(
    main_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (main_file.parent / "device.key.pem").write_bytes(key_pem)
    secret = key_pem.decode("ascii").splitlines()[1]  # the key's first line of material
    site = drop_in(main_file, "50-site.toml", "[gpio]\namber = 5\n")
    assert main(["config", "--config", str(main_file), "--dump"]) == 0
    text = capsys.readouterr().out
    assert secret not in text
    lines = text.splitlines()
    assert f"#   {site}" in lines
    amber = next(line for line in lines if line.startswith("amber = "))
    assert amber.split("#")[1].strip() == str(site)
    green = next(line for line in lines if line.startswith("green = "))
    assert green.endswith("# default")
    assert main(["config", "--config", str(main_file), "--dump", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["settings"]["gpio"]["amber"]["source"] == str(site)


def test_kiosk_config_reports_a_broken_drop_in_in_one_line(
    main_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = drop_in(main_file, "50-site.toml", "[gpio]\namber = 1\n")
    assert main(["config", "--config", str(main_file)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"kiosk: {broken}: [gpio] amber")


def test_several_servers_are_dumped_as_the_urls_the_file_gave(main_file: Path) -> None:
    text = main_file.read_text(encoding="utf-8")
    url_line = next(line for line in text.splitlines() if line.startswith("url = "))
    first = url_line.removeprefix("url = ").strip('"')
    second = "https://clinic-b.example:8443"
    main_file.write_text(
        text.replace(url_line, f'urls = ["{first}", "{second}"]'), encoding="utf-8"
    )
    config, sources = load_config_sources(main_file)
    server = dump(config, sources)["settings"]["server"]
    assert server["urls"] == {"value": [first, second], "source": str(main_file)}
    assert "url" not in server
    text = dump_text(dump(config, sources))
    assert f'urls = ["{first}", "{second}"]' in text
