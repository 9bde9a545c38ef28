"""Bundles checked before anything is written: each refusal with its reason, with real RAUC."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from kiosk.errors import UpdateRefused
from kiosk.update.boot_slots import BootSlots
from kiosk.update.bundles import check_payload, read_info
from kiosk.update.install import Unit, check_bundle
from kiosk.update.release import Release
from tests.kiosk.update.conftest import Keys, MakeBundle

RUNNING = Release((0, 1, 0), 1000)
COMMITTED_A = BootSlots("A")


def check(
    bundle: Path,
    conf: Path,
    *,
    slots: BootSlots = COMMITTED_A,
    booted: str = "A",
    force: bool = False,
) -> object:
    return check_bundle(bundle, Unit(RUNNING, slots, booted), conf=conf, force=force)


def refused(bundle: Path, conf: Path, **kwargs: Any) -> UpdateRefused:
    with pytest.raises(UpdateRefused) as caught:
        check(bundle, conf, **kwargs)
    return caught.value


def test_a_newer_bundle_signed_under_the_units_ca_passes_every_check(
    make_bundle: MakeBundle, system_conf: Path
) -> None:
    bundle = make_bundle("good")
    info = read_info(bundle, conf=system_conf)
    assert info.compatible == "onshi-kiosk-amd64"
    assert info.release == Release((0, 2, 0), 2000)
    assert [image.slot_class for image in info.images] == ["rootfs"]
    check(bundle, system_conf)


def test_a_bundle_signed_by_another_key_is_refused(
    make_bundle: MakeBundle, system_conf: Path, other_keys: Keys
) -> None:
    error = refused(make_bundle("other-key", signer=other_keys), system_conf)
    assert error.reason == "signature"
    assert "unable to get local issuer certificate" in str(error)


def test_a_truncated_bundle_is_refused(
    make_bundle: MakeBundle, system_conf: Path, tmp_path: Path
) -> None:
    whole = make_bundle("to-truncate").read_bytes()
    cut = tmp_path / "cut.raucb"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    assert refused(cut, system_conf).reason == "truncated"


def test_a_bundle_whose_signature_is_damaged_is_refused(
    make_bundle: MakeBundle, system_conf: Path, tmp_path: Path
) -> None:
    data = bytearray(make_bundle("bad-signature").read_bytes())
    data[-300] ^= 0xFF  # inside the CMS signature at the end of the bundle
    damaged = tmp_path / "bad-signature.raucb"
    damaged.write_bytes(bytes(data))
    assert refused(damaged, system_conf).reason in ("signature", "unreadable")


def test_a_bundle_whose_payload_was_changed_is_refused_before_anything_is_written(
    make_bundle: MakeBundle, system_conf: Path, tmp_path: Path
) -> None:
    data = bytearray(make_bundle("bad-payload").read_bytes())
    data[len(data) // 3] ^= 0xFF  # inside the root file system, after signing
    damaged = tmp_path / "bad-payload.raucb"
    damaged.write_bytes(bytes(data))
    info = read_info(damaged, conf=system_conf)  # the signed manifest still reads
    with pytest.raises(UpdateRefused, match="not what was signed") as caught:
        check_payload(damaged, info)
    assert caught.value.reason == "signature"


def test_a_bundle_without_its_signature_is_refused(
    make_bundle: MakeBundle, system_conf: Path, tmp_path: Path
) -> None:
    data = make_bundle("to-strip").read_bytes()
    size = int.from_bytes(data[-8:], "big")  # the signature's size closes a bundle
    stripped = tmp_path / "unsigned.raucb"
    stripped.write_bytes(data[: len(data) - size - 8] + bytes(8))
    error = refused(stripped, system_conf)
    assert error.reason == "signature"
    assert "Signature size is 0" in str(error)


def test_a_file_that_is_no_bundle_is_refused(system_conf: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.raucb"
    junk.write_bytes(b"not a bundle\n" * 100)
    assert refused(junk, system_conf).reason in ("truncated", "unreadable")
    missing = refused(tmp_path / "missing.raucb", system_conf)
    assert missing.reason == "unreadable"
    assert "no such file" in str(missing)


def test_a_bundle_for_another_unit_type_is_refused(
    make_bundle: MakeBundle, system_conf: Path
) -> None:
    error = refused(make_bundle("arm64", compatible="onshi-kiosk-arm64"), system_conf)
    assert error.reason == "compatible"
    assert "onshi-kiosk-arm64" in str(error)


@pytest.mark.parametrize(
    ("version", "build", "word"),
    [("0.0.9", 5000, "older than"), ("0.1.0", 999, "older than"), ("0.1.0", 1000, "the same as")],
)
def test_an_older_or_the_same_release_is_refused_unless_forced(
    make_bundle: MakeBundle, system_conf: Path, version: str, build: int, word: str
) -> None:
    bundle = make_bundle(f"old-{version}-{build}", version=version, build=build)
    error = refused(bundle, system_conf)
    assert error.reason == "older"
    assert word in str(error)
    check(bundle, system_conf, force=True)


def test_nothing_is_installed_while_a_slot_is_being_tried(
    make_bundle: MakeBundle, system_conf: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "b.raucb"
    shutil.copy(make_bundle("during-trial"), bundle)
    error = refused(bundle, system_conf, slots=BootSlots("A"), booted="B")
    assert error.reason == "trial"
