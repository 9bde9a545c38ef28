"""Reading an initramfs's names without unpacking it (provisioning/imagelib/initramfs.py): the
build refuses a Raspberry Pi initramfs its /init could not run in."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from tests.image.conftest import cpio

BOOTABLE = ["init", "scripts/local", "usr/bin/sh", "usr/lib/modules/6.1/ext4.ko"]


@pytest.fixture(scope="module")
def initramfs(builder: ModuleType) -> ModuleType:
    return builder.pi.initramfs  # type: ignore[no-any-return]


def test_the_names_of_an_early_archive_and_a_compressed_one_after_it(initramfs: ModuleType) -> None:
    data = cpio(["kernel/x86/microcode/GenuineIntel.bin"]) + gzip.compress(cpio(BOOTABLE))
    assert initramfs.names(data) == {"kernel/x86/microcode/GenuineIntel.bin", *BOOTABLE}


@pytest.mark.skipif(shutil.which("zstd") is None, reason="make deps installs zstd")
def test_a_zstd_initramfs_as_debian_makes_it(initramfs: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "initrd.img"
    path.write_bytes(
        subprocess.run(
            ["zstd", "-q"],
            input=cpio(["./" + n for n in BOOTABLE]),
            capture_output=True,
            check=True,
        ).stdout
    )
    assert initramfs.names(path.read_bytes()) == set(BOOTABLE)
    assert initramfs.missing(path) == []


def test_an_initramfs_without_a_shell_is_named_for_what_it_lacks(
    initramfs: ModuleType, tmp_path: Path
) -> None:
    # what proot's untranslated access checks once made: the hooks that copy a shell skipped
    path = tmp_path / "initrd.img"
    path.write_bytes(gzip.compress(cpio(["init", "usr/lib/modules/6.1/ext4.ko"])))
    assert initramfs.missing(path) == ["scripts/local", "a shell (usr/bin/sh or bin/sh)"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"kernel", "neither a cpio archive nor a known compression"),
        (cpio(BOOTABLE)[:60], "a cpio header cut short"),
        (b"070701" + b"Z" * 104, "a malformed cpio header"),
    ],
)
def test_what_is_not_an_initramfs_is_refused_by_name(
    initramfs: ModuleType, data: bytes, message: str
) -> None:
    with pytest.raises(initramfs.InitramfsError, match=message):
        initramfs.names(data)
