"""provisioning/build-bundle: a signed bundle from an image build, described by its root."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from kiosk.update.bundles import BundleInfo, read_info
from kiosk.update.release import Release
from tests.image.conftest import PROVISIONING, elf_header, fat, load_builder, mbr
from tests.kiosk.update.conftest import Keys, make_keys

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("bundle-keys") / "keys")


def root_fs(folder: Path, release: str | None) -> Path:
    """A small root file system: this machine's dash (amd64), and an onshi-release."""
    tree = folder / "tree"
    (tree / "usr/bin").mkdir(parents=True)
    (tree / "etc").mkdir()
    shutil.copy("/usr/bin/dash", tree / "usr/bin/dash")
    if release is not None:
        (tree / "etc/onshi-release").write_text(release)
    root = folder / "root.ext4"
    with root.open("wb") as f:
        f.truncate(8 * MIB)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(tree), str(root)], check=True)
    return root


def image_with(root: Path, path: Path) -> Path:
    """A disk image as build-image lays it out: boot, root slot A (bigger than its file
    system), root slot B, data."""
    slot = 16 * MIB // 512
    parts = [(0x0C, 2048, 2048), (0x83, 4096, slot), (0x83, 4096 + slot, slot)]
    with path.open("wb") as f:
        f.write(mbr(parts))
        f.seek(4096 * 512)
        f.write(root.read_bytes())
        f.truncate((4096 + 2 * slot) * 512)
    return path


def build_bundle(source: Path, keys: Keys, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(PROVISIONING / "build-bundle"),
            str(source),
            "--cert",
            str(keys.folder / "signing.cert.pem"),
            "--key",
            str(keys.folder / "signing.key.pem"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def bundle_info(bundle: Path, keys: Keys) -> BundleInfo:
    """What ``rauc info`` reads from the bundle, its signature checked under the test CA."""
    conf = bundle.with_name("system.conf")
    conf.write_text(
        f"[system]\ncompatible=x\nbootloader=noop\n[keyring]\npath={keys.ca}\n"
        "check-purpose=codesign\n"
    )
    return read_info(bundle, conf=conf)


def test_a_bundle_of_an_images_root_slot_says_its_release_and_architecture(
    tmp_path: Path, keys: Keys
) -> None:
    root = root_fs(tmp_path, 'ONSHI_VERSION="0.3.1"\nONSHI_BUILD="1764600000"\n')
    image = image_with(root, tmp_path / "kiosk.img")
    done = build_bundle(image, keys, tmp_path / "kiosk.raucb")
    assert done.returncode == 0, done.stderr
    info = bundle_info(tmp_path / "kiosk.raucb", keys)
    assert info.compatible == "onshi-kiosk-amd64"
    assert info.release == Release((0, 3, 1), 1764600000)
    # the slot's file system only, not the rest of its partition
    assert info.images[0].size == root.stat().st_size
    facts = json.loads((tmp_path / "kiosk.raucb.json").read_text())
    assert facts["bundle_bytes"] == (tmp_path / "kiosk.raucb").stat().st_size


def test_a_root_that_does_not_say_its_release_makes_no_bundle(tmp_path: Path, keys: Keys) -> None:
    root = root_fs(tmp_path, None)
    done = build_bundle(root, keys, tmp_path / "kiosk.raucb")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"build-bundle: {root}: its root file system has no /etc/onshi-release"
    )
    assert list(tmp_path.glob("*.raucb*")) == []


def test_a_file_with_no_root_file_system_makes_no_bundle(tmp_path: Path, keys: Keys) -> None:
    junk = tmp_path / "junk.img"
    junk.write_bytes(bytes(64 * 1024))
    done = build_bundle(junk, keys, tmp_path / "kiosk.raucb")
    assert done.returncode == 1
    assert "no ext4 root file system in it" in done.stderr


def arm64_root(folder: Path) -> Path:
    """A small root file system whose programs are for arm64 (an ELF header says so)."""
    root = root_fs(folder, 'ONSHI_VERSION="0.4.0"\nONSHI_BUILD="1764700000"\n')
    elf = folder / "dash"
    elf.write_bytes(elf_header(0xB7))  # EM_AARCH64
    for command in ("rm /usr/bin/dash", f"write {elf} /usr/bin/dash"):
        subprocess.run(["debugfs", "-w", "-R", command, str(root)], check=True, capture_output=True)
    return root


def pi_image(folder: Path, root: Path, boot_files: dict[str, bytes]) -> tuple[Path, Path]:
    """A disk image in the Raspberry Pi's layout (build-image's own assembly): the image, and
    its boot slot A's file system."""
    autoboot, boot, data = folder / "autoboot.vfat", folder / "boot.vfat", folder / "data.ext4"
    fat(autoboot, 34, {"autoboot.txt": b"[all]\ntryboot_a_b=1\n"})
    fat(boot, 34, boot_files)
    data.write_bytes(bytes(MIB))
    image = folder / "pi.img"
    load_builder().pi.assemble(image, "0x6f6e7368", 16, autoboot, boot, root, data)
    return image, boot


def test_a_raspberry_pi_bundle_carries_its_boot_slot_and_its_root(
    tmp_path: Path, keys: Keys
) -> None:
    root = arm64_root(tmp_path)
    image, boot = pi_image(tmp_path, root, {"cmdline-B.txt": b"root=PARTUUID=x-06\n"})
    done = build_bundle(image, keys, tmp_path / "pi.raucb")
    assert done.returncode == 0, done.stderr
    info = bundle_info(tmp_path / "pi.raucb", keys)
    assert info.compatible == "onshi-kiosk-arm64"
    assert info.release == Release((0, 4, 0), 1764700000)
    sizes = {image.slot_class: image.size for image in info.images}
    # the whole boot file system (both slots' command lines in it), and the root's own size
    assert sizes == {"rootfs": root.stat().st_size, "boot": boot.stat().st_size}


def test_a_raspberry_pi_layout_with_amd64_programs_makes_no_bundle(
    tmp_path: Path, keys: Keys
) -> None:
    root = root_fs(tmp_path, 'ONSHI_VERSION="0.4.0"\nONSHI_BUILD="1764700000"\n')
    image, _boot = pi_image(tmp_path, root, {"config.txt": b"arm_64bit=1\n"})
    done = build_bundle(image, keys, tmp_path / "pi.raucb")
    assert done.returncode == 1
    assert (
        done.stderr.strip() == f"build-bundle: {image}: a Raspberry Pi layout with amd64 programs"
    )
    assert list(tmp_path.glob("*.raucb*")) == []
