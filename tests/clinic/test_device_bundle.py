"""``clinic-server device issue NAME --bundle FILE``: one file with everything a unit needs,
written whole or not at all; ``--out`` keeps working beside it."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tarfile
import tomllib
from pathlib import Path

import pytest
from cryptography import x509

from clinic.cli import main
from contract.device_bundle import FILES, MANIFEST, MEMBERS, unpack
from contract.errors import ConfigError
from contract.sealing import OutboxPrivateKey, OutboxPublicKey
from tests.support.enrolment import PUBLIC_NAME, clinic_data_dir, issue_bundle
from tests.support.storage import tmpfs


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clinic_data_dir(tmp_path_factory.mktemp("bundle"))


def devices(data: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    capsys.readouterr()
    assert main(["--data-dir", str(data), "device", "list", "--json"]) == 0
    return [d["device_id"] for d in json.loads(capsys.readouterr().out)]


def test_the_bundle_holds_exactly_its_members_with_their_digests(data, tmp_path):
    path = tmp_path / "unit-a.tar"
    assert issue_bundle(data, "unit-a", path) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["unit-a.tar"]  # no temporary file left
    with tarfile.open(path, mode="r:") as tar:
        names = [m.name for m in tar]
        assert all(m.isreg() for m in tar)
        assert tar.getmember("device.key.pem").mode == 0o600
    assert names == [MANIFEST, *FILES]
    assert set(names) == MEMBERS
    manifest, files = unpack(path.read_bytes())
    assert manifest.device == "unit-a"
    doc = json.loads(members_of(path)[MANIFEST])
    assert doc["format"] == 1
    assert doc["sha256"] == {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}
    cert = x509.load_pem_x509_certificate(files["device.pem"])
    assert cert.subject.rfc4514_string() == "CN=unit-a"
    assert files["server-ca.pem"] == (data / "server-ca.pem").read_bytes()
    outbox = OutboxPrivateKey.load(data / "outbox.key.json").public_key()
    assert OutboxPublicKey.from_json(files["outbox-key.json"].decode()).key_id == outbox.key_id
    assert files["outbox-key.json"].decode() == (data / "outbox.pub.json").read_text()


def members_of(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, mode="r:") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]


def test_the_kiosk_config_carries_the_options_and_the_public_name(data, tmp_path):
    default, chosen = tmp_path / "default.tar", tmp_path / "chosen.tar"
    assert issue_bundle(data, "unit-b", default) == 0
    config = tomllib.loads(members_of(default)["kiosk.toml"].decode())
    assert config["server"]["url"] == f"https://{PUBLIC_NAME}:8443"
    assert config["reader"]["name"] == "auto"
    assert config["display"]["layout"] == "landscape"
    assert config["gpio"]["green"] == 17
    assert config["gpio"]["backend"] == "lgpio"
    assert config["device"] == {"certificate": "device.pem", "key": "device.key.pem"}
    assert config["server"]["ca"] == "server-ca.pem"
    assert config["outbox"]["public_key"] == "outbox-key.json"
    options = ["--server-url", "https://10.1.2.3:9443", "--reader", 'SONY "RC-S300" 00 00']
    options += ["--layout", "portrait", "--green", "5", "--staff-button", "25"]
    options += ["--gpio-backend", "mock"]
    assert issue_bundle(data, "unit-c", chosen, *options) == 0
    text = members_of(chosen)["kiosk.toml"].decode()
    assert "# kiosk.toml of unit unit-c" in text
    config = tomllib.loads(text)
    assert config["server"]["url"] == "https://10.1.2.3:9443"
    assert config["reader"]["name"] == 'SONY "RC-S300" 00 00'
    assert config["display"]["layout"] == "portrait"
    assert (config["gpio"]["green"], config["gpio"]["staff_button"]) == (5, 25)
    assert config["gpio"]["backend"] == "mock"


def test_without_a_public_name_the_url_is_required_and_nothing_is_issued(tmp_path, capsys):
    from clinic.cli import initialise

    bare = tmp_path / "bare"
    initialise(bare, admin="admin", password=os.urandom(12).hex())
    assert issue_bundle(bare, "unit-d", tmp_path / "d.tar") == 2
    assert "give --server-url" in capsys.readouterr().err
    assert devices(bare, capsys) == []
    assert not (tmp_path / "d.tar").exists()
    assert issue_bundle(bare, "unit-d", tmp_path / "d.tar", "--server-url", "http://x:1") == 2
    assert "must be an https:// URL" in capsys.readouterr().err
    assert devices(bare, capsys) == []


def test_two_parts_on_one_pin_are_refused_before_issuing(data, tmp_path, capsys):
    assert issue_bundle(data, "unit-e", tmp_path / "e.tar", "--red", "17") == 2
    assert "two GPIO options name the same pin" in capsys.readouterr().err
    assert "unit-e" not in devices(data, capsys)


def test_a_bundle_path_that_cannot_be_written_is_refused_before_issuing(data, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.mkdir()  # a folder where the file should go
    assert issue_bundle(data, "unit-f", taken) == 2
    assert issue_bundle(data, "unit-f", tmp_path / "no" / "such" / "f.tar") == 2
    assert "not a file in a folder this user can write to" in capsys.readouterr().err
    assert "unit-f" not in devices(data, capsys)
    assert os.listdir(tmp_path) == ["taken"]
    assert os.listdir(taken) == []


def test_a_write_that_fails_late_says_the_certificate_is_issued(data, tmp_path, capsys):
    from clinic.device_bundle import write_bundle

    files = {n: b"x" for n in ("kiosk.toml", "server-ca.pem", "outbox-key.json")}
    with tmpfs(tmp_path / "small", "4k") as small:
        (small / "filler").write_bytes(b"\0" * 4096)
        with pytest.raises(ConfigError, match="revoke it") as refused:
            write_bundle(small / "b.tar", "unit-z", files, certificate_pem=b"c", key_pem=b"k")
        assert "No space left" in str(refused.value)
        assert os.listdir(small) == ["filler"]


def test_out_and_bundle_together_write_both_from_one_certificate(data, tmp_path, capsys):
    out = tmp_path / "files"
    assert issue_bundle(data, "unit-g", tmp_path / "g.tar", "--out", str(out)) == 0
    assert (out / "unit-g.pem").read_bytes() == members_of(tmp_path / "g.tar")["device.pem"]
    assert stat.S_IMODE((out / "unit-g.key.pem").stat().st_mode) == 0o600
    assert devices(data, capsys).count("unit-g") == 1


def test_out_alone_still_writes_the_files_it_always_did(data, tmp_path, capsys):
    out = tmp_path / "files"
    assert main(["--data-dir", str(data), "device", "issue", "unit-h", "--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == ["clinic-server-ca.pem", "unit-h.key.pem", "unit-h.pem"]
