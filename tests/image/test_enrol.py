"""provisioning/enrol: the bundle onto an appliance image's boot partition, without mounting."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.image.conftest import PROVISIONING, disk, ext4, fat

SECTOR = 512


def appliance(tmp_path: Path) -> Path:
    boot, data = tmp_path / "boot.vfat", tmp_path / "data.ext4"
    fat(boot, 40, {"cmdline.txt": b"root=PARTUUID=6f6e7368-02 ro\n"})
    ext4(data, 4, {})
    return disk(tmp_path / "kiosk.img", [(0x0C, boot), (0x83, data)])


def bundle(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


def enrol(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PROVISIONING / "enrol"), *args], capture_output=True, text=True, check=False
    )


def boot_file(image: Path, name: str) -> bytes | None:
    done = subprocess.run(
        ["mtype", "-i", f"{image}@@{2048 * SECTOR}", f"::/{name}"],
        capture_output=True,
        check=False,
        env=dict(os.environ, MTOOLS_SKIP_CHECK="1"),
    )
    return done.stdout if done.returncode == 0 else None


def test_the_bundle_lands_on_the_boot_partition(tmp_path: Path) -> None:
    image = appliance(tmp_path)
    tar = bundle(tmp_path / "kiosk-1.tar", {"bundle.json": b"{}", "kiosk.toml": b""})
    done = enrol(str(image), str(tar))
    assert done.returncode == 0, done.stderr
    assert boot_file(image, "onshi-enrol.tar") == tar.read_bytes()
    assert boot_file(image, "onshi-enrol.tar.tmp") is None


def test_the_raspberry_pi_images_autoboot_partition_takes_the_bundle(tmp_path: Path) -> None:
    autoboot, data = tmp_path / "autoboot.vfat", tmp_path / "data.ext4"
    fat(autoboot, 40, {"autoboot.txt": (PROVISIONING / "boot/pi/autoboot.txt").read_bytes()})
    ext4(data, 4, {})
    image = disk(tmp_path / "kiosk-pi.img", [(0x0C, autoboot), (0x0C, data)])
    tar = bundle(tmp_path / "kiosk-1.tar", {"bundle.json": b"{}", "kiosk.toml": b""})
    done = enrol(str(image), str(tar))
    assert done.returncode == 0, done.stderr
    assert boot_file(image, "onshi-enrol.tar") == tar.read_bytes()


def test_re_enrolment_is_explicit_and_replaces_a_waiting_one(tmp_path: Path) -> None:
    image = appliance(tmp_path)
    first = bundle(tmp_path / "a.tar", {"bundle.json": b"{1}"})
    second = bundle(tmp_path / "b.tar", {"bundle.json": b"{2}"})
    assert enrol("--again", str(image), str(first)).returncode == 0
    assert boot_file(image, "onshi-enrol-again.tar") == first.read_bytes()
    assert enrol(str(image), str(second)).returncode == 0
    assert boot_file(image, "onshi-enrol-again.tar") is None
    assert boot_file(image, "onshi-enrol.tar") == second.read_bytes()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "none.tar", "no such bundle"),
        (lambda p: (p / "x.tar").write_bytes(b"not a tar") and p / "x.tar", "not a tar file"),
        (lambda p: bundle(p / "y.tar", {"kiosk.toml": b""}), "not an enrolment bundle"),
    ],
)
def test_a_bad_bundle_is_refused_and_the_image_untouched(tmp_path: Path, make, message) -> None:  # type: ignore[no-untyped-def]
    image = appliance(tmp_path)
    before = image.read_bytes()
    done = enrol(str(image), str(make(tmp_path)))
    assert done.returncode == 1
    assert message in done.stderr
    assert done.stderr.count("\n") == 1
    assert image.read_bytes() == before


def test_an_image_that_is_not_an_appliance_is_refused(tmp_path: Path) -> None:
    boot = tmp_path / "other.vfat"
    fat(boot, 40, {"readme.txt": b"hello"})
    image = disk(tmp_path / "other.img", [(0x0C, boot)])
    tar = bundle(tmp_path / "k.tar", {"bundle.json": b"{}"})
    done = enrol(str(image), str(tar))
    assert done.returncode == 1
    assert "not an appliance boot partition" in done.stderr
    not_a_disk = tmp_path / "plain.bin"
    not_a_disk.write_bytes(bytes(4096))
    assert "no partition table" in enrol(str(not_a_disk), str(tar)).stderr
