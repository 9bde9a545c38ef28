"""``kiosk enrol``: a good bundle is installed whole; every broken one is refused with one
line, its own exit status, and nothing changed."""

from __future__ import annotations

import datetime as dt
import grp
import io
import os
import pwd
import stat
import tarfile
from pathlib import Path

import pytest

from clinic.pki import CertificateAuthority, cert_pem, key_pem, new_device_key
from contract.device_bundle import MAX_MEMBER_BYTES
from kiosk.cli import main as kiosk
from kiosk.config import load_config
from tests.support.enrolment import (
    clinic_data_dir,
    issue_bundle,
    members,
    rebuilt,
    with_raw_member,
)

BROKEN, ALREADY, INSTALL_FAILED = 3, 4, 5


@pytest.fixture(scope="module")
def clinic_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clinic_data_dir(tmp_path_factory.mktemp("enrol"))


@pytest.fixture(scope="module")
def good(clinic_data: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A bundle for unit-1 as the server issues it."""
    path = tmp_path_factory.mktemp("bundle") / "unit-1.tar"
    assert issue_bundle(clinic_data, "unit-1", path) == 0
    return path.read_bytes()


def tree(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every path under ``root`` with its mode and contents: to prove nothing changed."""
    found: dict[str, tuple[int, bytes]] = {}
    for path in sorted(root.rglob("*")):
        mode = path.lstat().st_mode
        data = path.read_bytes() if stat.S_ISREG(mode) else b""
        found[str(path.relative_to(root))] = (mode, data)
    return found


def enrol(tmp_path: Path, bundle: bytes, *args: str) -> int:
    path = tmp_path / "bundle.tar"
    path.write_bytes(bundle)
    return kiosk(["enrol", str(path), *args])


def refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], bundle: bytes) -> str:
    """Enrol ``bundle`` into a new folder: exit 3, one line, nothing left beside the bundle."""
    before = tree(tmp_path)
    code = enrol(tmp_path, bundle, "--into", str(tmp_path / "identity"))
    err = capsys.readouterr().err
    assert code == BROKEN, err
    assert len(err.strip().splitlines()) == 1, err
    after = tree(tmp_path)
    after.pop("bundle.tar")
    before.pop("bundle.tar", None)
    assert after == before  # no identity folder, no staging folder left behind
    assert enrol(tmp_path, bundle, "--check") == BROKEN
    capsys.readouterr()
    return err


def test_a_good_bundle_is_installed_with_its_modes_and_loads(tmp_path, good, capsys):
    into = tmp_path / "identity"
    assert enrol(tmp_path, good, "--into", str(into)) == 0
    assert "enrolled unit-1" in capsys.readouterr().out
    assert sorted(os.listdir(into)) == sorted(members(good))
    for name, data in members(good).items():
        assert (into / name).read_bytes() == data, name
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in into.iterdir()}
    assert modes.pop("device.key.pem") == 0o600
    assert modes.pop("kiosk.toml") == 0o640
    assert set(modes.values()) == {0o644}
    assert stat.S_IMODE(into.stat().st_mode) == 0o750
    config = load_config(into / "kiosk.toml")
    assert config.device.identity().device_id == "unit-1"
    assert config.server.url == "https://clinic-server.lan:8443"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_check_only_installs_nothing(tmp_path, good, capsys):
    assert enrol(tmp_path, good, "--check") == 0
    assert "bundle of unit-1 is good" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path)) == ["bundle.tar"]


def test_check_and_into_are_one_or_the_other(tmp_path, good, capsys):
    assert enrol(tmp_path, good) == 2
    assert enrol(tmp_path, good, "--check", "--into", str(tmp_path / "i")) == 2
    assert "either --into" in capsys.readouterr().err


@pytest.mark.parametrize("keep", [0, 511, 1024, 2600, 4000])
def test_a_truncated_bundle_is_refused(tmp_path, good, capsys, keep):
    assert "the bundle is truncated" in refused(tmp_path, capsys, good[:keep])


def test_a_compressed_bundle_is_refused(tmp_path, good, capsys):
    import gzip

    assert "not a readable uncompressed tar" in refused(tmp_path, capsys, gzip.compress(good))


def test_a_member_with_a_path_is_refused(tmp_path, good, capsys):
    info = tarfile.TarInfo("../etc/device.pem")
    err = refused(tmp_path, capsys, with_raw_member(good, info, b"x"))
    assert "unexpected member '../etc/device.pem'" in err
    assert not (tmp_path.parent / "etc").exists()


@pytest.mark.parametrize(
    "kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.DIRTYPE, tarfile.FIFOTYPE]
)
def test_a_link_device_or_folder_in_place_of_a_file_is_refused(tmp_path, good, capsys, kind):
    files = members(good)
    files.pop("device.pem")
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("device.pem")
        info.type, info.linkname = kind, "/etc/shadow"
        tar.addfile(info)
        for name, data in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    assert "device.pem is not a regular file" in refused(tmp_path, capsys, out.getvalue())


def test_an_extra_member_is_refused(tmp_path, good, capsys):
    err = refused(tmp_path, capsys, with_raw_member(good, tarfile.TarInfo("notes.txt"), b"hi"))
    assert "unexpected member 'notes.txt'" in err


def test_a_repeated_member_is_refused(tmp_path, good, capsys):
    repeat = tarfile.TarInfo("kiosk.toml")
    assert "appears twice" in refused(tmp_path, capsys, with_raw_member(good, repeat, b"x"))


def test_an_oversized_member_is_refused(tmp_path, good, capsys):
    big = b"#" * (MAX_MEMBER_BYTES + 1)
    assert "more than" in refused(tmp_path, capsys, rebuilt(good, kiosk_toml=big))


def test_a_member_changed_after_issue_is_refused(tmp_path, good, capsys):
    config = members(good)["kiosk.toml"].replace(b"clinic-server.lan", b"elsewhere.example")
    err = refused(tmp_path, capsys, rebuilt(good, rehash=False, kiosk_toml=config))
    assert "kiosk.toml does not match its sha256 in bundle.json" in err


def test_a_key_of_another_certificate_is_refused(tmp_path, good, capsys):
    other = key_pem(new_device_key())
    err = refused(tmp_path, capsys, rebuilt(good, device_key_pem=other))
    assert "device.key.pem does not belong to device.pem" in err


def _device_ca(clinic_data: Path) -> CertificateAuthority:
    return CertificateAuthority.load(
        clinic_data / "device-ca.pem", clinic_data / "device-ca.key.pem"
    )


def test_an_expired_certificate_is_refused(tmp_path, good, capsys, clinic_data):
    key = new_device_key()
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    cert = _device_ca(clinic_data).issue_device(
        "unit-1", key, now=past, lifetime=dt.timedelta(days=1)
    )
    bundle = rebuilt(good, device_pem=cert_pem(cert), device_key_pem=key_pem(key))
    assert "device.pem expired on" in refused(tmp_path, capsys, bundle)


def test_a_server_certificate_in_place_of_the_device_one_is_refused(
    tmp_path, good, capsys, clinic_data
):
    key = new_device_key()
    cert = _device_ca(clinic_data).issue_server(key, ["unit-1"])
    bundle = rebuilt(good, device_pem=cert_pem(cert), device_key_pem=key_pem(key))
    assert "device.pem is not a device certificate" in refused(tmp_path, capsys, bundle)


def test_a_certificate_of_another_unit_is_refused(tmp_path, good, capsys, clinic_data):
    key = new_device_key()
    cert = _device_ca(clinic_data).issue_device("unit-2", key)
    bundle = rebuilt(good, device_pem=cert_pem(cert), device_key_pem=key_pem(key))
    assert "is for 'unit-2', the manifest names 'unit-1'" in refused(tmp_path, capsys, bundle)


def test_a_server_ca_that_is_not_a_ca_is_refused(tmp_path, good, capsys):
    bundle = rebuilt(good, server_ca_pem=members(good)["device.pem"])
    assert "server-ca.pem is not a CA certificate" in refused(tmp_path, capsys, bundle)
    garbage = rebuilt(good, server_ca_pem=b"-----BEGIN CERTIFICATE-----\nnope\n")
    assert "server-ca.pem is not a readable CA certificate" in refused(tmp_path, capsys, garbage)


def test_a_broken_outbox_key_is_refused(tmp_path, good, capsys):
    bundle = rebuilt(good, outbox_key_json=b'{"format": "nothing"}')
    assert "outbox-key.json is not a valid outbox public key" in refused(tmp_path, capsys, bundle)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ((b"green = 17", b"green = 0"), "[gpio] green = 0: GPIO 0 and 1 are reserved"),
        ((b'layout = "landscape"', b'layout = "sideways"'), "[display] layout must be one of"),
        ((b"[heartbeat]", b"[heartbeat"), "kiosk.toml is not valid TOML"),
        ((b"[pin]", b"[pins]"), "[pins] is not a known section"),
        ((b'key = "device.key.pem"', b'key = "/etc/ssl/private/k.pem"'), "[device] key must be"),
    ],
)
def test_a_broken_kiosk_config_is_refused_naming_the_setting(tmp_path, good, capsys, change, said):
    old, new = change
    config = members(good)["kiosk.toml"]
    assert old in config
    err = refused(tmp_path, capsys, rebuilt(good, kiosk_toml=config.replace(old, new)))
    assert said in err


def test_an_enrolled_unit_is_not_enrolled_again_without_again(tmp_path, good, capsys):
    into = tmp_path / "identity"
    assert enrol(tmp_path, good, "--into", str(into)) == 0
    before = tree(tmp_path)
    assert enrol(tmp_path, good, "--into", str(into)) == ALREADY
    assert "holds an identity already: re-enrolling is `kiosk enrol --again`" in (
        capsys.readouterr().err
    )
    assert tree(tmp_path) == before


def test_a_folder_holding_other_files_is_left_alone(tmp_path, good, capsys):
    into = tmp_path / "identity"
    into.mkdir()
    (into / "notes.txt").write_text("mine")
    assert enrol(tmp_path, good, "--into", str(into)) == 2
    assert "holds other files" in capsys.readouterr().err
    assert os.listdir(into) == ["notes.txt"]


def test_an_empty_folder_is_enrolled_into(tmp_path, good):
    into = tmp_path / "identity"
    into.mkdir()
    assert enrol(tmp_path, good, "--into", str(into)) == 0
    assert (into / "device.key.pem").is_file()


def test_enrolling_again_keeps_the_old_identity_as_a_dated_backup(
    tmp_path, good, capsys, clinic_data
):
    into = tmp_path / "identity"
    assert enrol(tmp_path, good, "--into", str(into)) == 0
    old = tree(into)
    second = tmp_path / "unit-1-new.tar"
    assert issue_bundle(clinic_data, "unit-1", second, "--layout", "portrait") == 0
    capsys.readouterr()
    assert kiosk(["enrol", str(second), "--into", str(into), "--again"]) == 0
    out = capsys.readouterr().out
    backups = [p for p in tmp_path.iterdir() if p.name.startswith("identity.replaced-")]
    assert len(backups) == 1
    assert str(backups[0]) in out
    assert stat.S_IMODE(backups[0].stat().st_mode) == 0o700
    assert {k: v[1] for k, v in tree(backups[0]).items()} == {k: v[1] for k, v in old.items()}
    assert load_config(into / "kiosk.toml").display.layout == "portrait"
    assert (into / "device.pem").read_bytes() != old["device.pem"][1]


def test_a_broken_bundle_given_with_again_keeps_the_identity(tmp_path, good, capsys):
    into = tmp_path / "identity"
    assert enrol(tmp_path, good, "--into", str(into)) == 0
    before = tree(tmp_path)
    before.pop("bundle.tar")
    assert enrol(tmp_path, good[:3000], "--into", str(into), "--again") == BROKEN
    after = tree(tmp_path)
    after.pop("bundle.tar")
    assert after == before


@pytest.mark.skipif(os.geteuid() != 0, reason="owners are set by root only")
def test_as_root_the_key_belongs_to_the_owner_and_the_rest_to_root_and_the_group(tmp_path, good):
    user, group = pwd.getpwnam("nobody"), grp.getgrnam("nogroup")
    into = tmp_path / "identity"
    assert (
        enrol(tmp_path, good, "--into", str(into), "--owner", "nobody", "--group", "nogroup") == 0
    )
    owners = {p.name: (p.stat().st_uid, p.stat().st_gid) for p in into.iterdir()}
    assert owners.pop("device.key.pem") == (user.pw_uid, group.gr_gid)
    assert set(owners.values()) == {(0, group.gr_gid)}
    assert (into.stat().st_uid, into.stat().st_gid) == (0, group.gr_gid)


def test_an_unknown_owner_or_group_changes_nothing(tmp_path, good, capsys):
    into = tmp_path / "identity"
    assert enrol(tmp_path, good, "--into", str(into), "--owner", "no-such-user-x") == 2
    assert enrol(tmp_path, good, "--into", str(into), "--group", "no-such-group-x") == 2
    err = capsys.readouterr().err
    assert "--owner no-such-user-x: no such user" in err
    assert "--group no-such-group-x: no such group" in err
    assert not into.exists()


def test_the_bundle_config_has_every_setting_of_the_example(good):
    """The kiosk.toml the server writes and examples/kiosk.toml do not drift apart."""
    import tomllib

    example = tomllib.loads(
        (Path(__file__).parents[2] / "examples" / "kiosk.toml").read_text(encoding="utf-8")
    )
    issued = tomllib.loads(members(good)["kiosk.toml"].decode("utf-8"))
    for section, settings in example.items():
        assert section in issued, section
        assert set(settings) <= set(issued[section]), section
    assert set(issued) == set(example)


def test_a_staging_folder_left_by_an_interrupted_enrolment_is_removed(tmp_path, good):
    leftover = tmp_path / ".identity.enrol-k3j2h1"
    leftover.mkdir()
    (leftover / "device.key.pem").write_bytes(members(good)["device.key.pem"])
    assert enrol(tmp_path, good, "--into", str(tmp_path / "identity")) == 0
    assert sorted(os.listdir(tmp_path)) == ["bundle.tar", "identity"]


def test_a_certificate_without_a_device_name_is_refused(tmp_path, good, capsys, clinic_data):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    ca = _device_ca(clinic_data)
    key = new_device_key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    bundle = rebuilt(good, device_pem=cert_pem(cert), device_key_pem=key_pem(key))
    assert "device.pem: device certificate has no single common name" in refused(
        tmp_path, capsys, bundle
    )
