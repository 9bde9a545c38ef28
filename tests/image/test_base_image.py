"""The builder's checks of its input: a Raspberry Pi OS Lite arm64 image, or a clear refusal."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from tests.image.conftest import PI_BOOT_FILES, PROVISIONING


@pytest.fixture(scope="module")
def update_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The maintainer's update CA certificate, as provisioning/update-keys makes it."""
    keys = tmp_path_factory.mktemp("update-keys") / "keys"
    subprocess.run([str(PROVISIONING / "update-keys"), str(keys)], check=True, capture_output=True)
    return keys / "update-ca.cert.pem"


@pytest.fixture
def build_image(update_ca: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PROVISIONING / "build-image"), "--update-ca", str(update_ca), *args],
            capture_output=True,
            text=True,
            check=False,
        )

    return run


BuildImage = Callable[..., subprocess.CompletedProcess[str]]


def test_a_missing_base_is_one_line(tmp_path: Path, build_image: BuildImage) -> None:
    done = build_image("--base", str(tmp_path / "nowhere.img"), "--out", str(tmp_path / "k.img"))
    assert done.returncode == 1
    assert done.stderr == f"build-image: {tmp_path}/nowhere.img: no such base image\n"
    assert not (tmp_path / "k.img").exists()


def test_a_truncated_base_is_refused(tmp_path: Path, pi_image, build_image: BuildImage) -> None:  # type: ignore[no-untyped-def]
    image = pi_image()
    size = image.stat().st_size
    with image.open("r+b") as f:
        f.truncate(size - 4 * 1024 * 1024)
    done = build_image("--base", str(image), "--out", str(tmp_path / "k.img"))
    assert done.returncode == 1
    assert "truncated" in done.stderr
    assert done.stderr.count("\n") == 1


def test_a_base_for_another_machine_is_refused(
    tmp_path: Path, pi_image, build_image: BuildImage
) -> None:  # type: ignore[no-untyped-def]
    image = pi_image(machine=0x3E)
    done = build_image("--base", str(image), "--out", str(tmp_path / "k.img"))
    assert done.returncode == 1
    assert done.stderr.strip() == f"build-image: {image}: built for amd64, not arm64"


def test_a_file_that_is_no_disk_image_is_refused(tmp_path: Path, build_image: BuildImage) -> None:
    junk = tmp_path / "photo.img"
    junk.write_bytes(b"\x89PNG" + bytes(4096))
    done = build_image("--base", str(junk), "--out", str(tmp_path / "k.img"))
    assert done.stderr.strip() == f"build-image: {junk}: not a disk image (no partition table)"


def test_the_raspberry_pi_boot_files_are_checked(
    tmp_path: Path,
    pi_image,
    builder: ModuleType,  # type: ignore[no-untyped-def]
) -> None:
    files = dict(PI_BOOT_FILES)
    del files["start4.elf"]
    image = pi_image(boot_files=files)
    with pytest.raises(builder.BuildError, match=r"the boot partition has no start4\.elf"):
        builder.check_pi_base(image)


def test_a_good_arm64_base_is_described_for_the_manifest(
    pi_image,
    builder: ModuleType,  # type: ignore[no-untyped-def]
) -> None:
    image = pi_image()
    facts = builder.check_pi_base(image)
    assert facts["arch"] == "arm64"
    assert facts["base_sha256"] == builder.sha256(image)
    assert len(str(facts["base_sha256"])) == 64


def test_arguments_that_do_not_go_together(tmp_path: Path, build_image: BuildImage) -> None:
    done = build_image("--base", "x.img", "--arch", "amd64", "--out", str(tmp_path / "k.img"))
    assert done.returncode == 2
    assert "a Raspberry Pi OS base is arm64" in done.stderr
    done = build_image("--base", "debian", "--out", str(tmp_path / "no/such/k.img"))
    assert done.returncode == 2
    assert "its folder does not exist" in done.stderr


def test_the_kernel_command_line_keeps_the_console_quiet_and_the_root_read_only(
    builder: ModuleType, update_ca: Path
) -> None:
    options = builder.parse(
        ["--base", "debian", "--out", "/tmp/k.img", "--update-ca", str(update_ca)]
    )
    line = builder.cmdline(options).split()
    assert "ro" in line
    assert "vt.global_cursor_default=0" in line
    assert "consoleblank=0" in line
    assert "panic=10" in line  # a panicking kernel restarts: a tried slot then falls back
    # the root is each slot's own: the boot loader adds it (tests/image/test_update_files.py)
    assert not any(word.startswith("root=") for word in line)
