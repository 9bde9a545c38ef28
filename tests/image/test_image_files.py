"""The image's own files: units, drop-ins, fstab, scripts, as the image build installs them."""

from __future__ import annotations

import argparse
import configparser
import re
import subprocess
from pathlib import Path

import pytest

from tests.image.conftest import PROVISIONING, load_builder

PROJECT = PROVISIONING.parent
OVERLAY = PROVISIONING / "image"
IMAGE_UNITS = (
    "onshi-enrol.service",
    "onshi-unenrolled.service",
    "onshi-data-grow.service",
    "onshi-ssh-hostkey.service",
    "onshi-update-confirm.service",
    "onshi-update-deadline.service",
)
IDENTITY = "/etc/onshi-kiosk/kiosk.toml"


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path, encoding="utf-8")
    return parser


@pytest.mark.parametrize("name", IMAGE_UNITS)
def test_each_image_unit_runs_a_program_the_image_has(name: str) -> None:
    service = unit(PROJECT / "systemd" / name)["Service"]
    for line in service["ExecStart"].splitlines():
        program = line.split()[0]
        if program.startswith("/usr/lib/onshi-image/"):
            assert (OVERLAY / program.lstrip("/")).stat().st_mode & 0o111, program
        else:
            assert program.startswith(("/usr/bin/", "/opt/onshi-kiosk/venv/bin/")), program


@pytest.mark.parametrize("name", ["onshi-kiosk.service", "onshi-kiosk-uploader.service"])
def test_the_kiosk_and_uploader_start_only_with_an_identity(name: str) -> None:
    dropin = unit(OVERLAY / "etc/systemd/system" / f"{name}.d" / "onshi-image.conf")["Unit"]
    assert dropin["ConditionPathExists"] == IDENTITY
    assert "onshi-enrol.service" in dropin["After"]


def test_without_an_identity_the_maintainer_screen_runs_and_does_not_cancel_the_kiosk() -> None:
    unenrolled = unit(PROJECT / "systemd/onshi-unenrolled.service")["Unit"]
    assert unenrolled["ConditionPathExists"] == f"!{IDENTITY}"
    # both are wanted by multi-user.target: a Conflicts= between them drops one start job
    assert "onshi-kiosk" not in unenrolled.get("Conflicts", "")


def test_the_root_is_read_only_and_the_data_partition_grows_and_is_checked() -> None:
    rows = [
        line.split()
        for line in (OVERLAY / "etc/fstab").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    mounts = {row[1]: row for row in rows}
    # the root is the booted slot's, read-only from the kernel's command line
    assert "/" not in mounts
    assert " ro " in f" {load_builder().cmdline(argparse.Namespace(arch='amd64'))} "
    assert "x-systemd.growfs" in mounts["/data"][3]
    assert mounts["/data"][5] == "2"  # checked at boot
    assert mounts["/tmp"][2] == mounts["/var/tmp"][2] == "tmpfs"


def test_ssh_takes_keys_only() -> None:
    conf = (OVERLAY / "etc/ssh/sshd_config.d/onshi.conf").read_text().splitlines()
    assert "PasswordAuthentication no" in conf
    assert "KbdInteractiveAuthentication no" in conf


def test_the_gpio_chips_belong_to_a_group_the_kiosks_user_is_in() -> None:
    rule = (OVERLAY / "usr/lib/udev/rules.d/60-onshi-gpio.rules").read_text().splitlines()
    (line,) = [line for line in rule if line and not line.startswith("#")]
    assert re.findall(r'(\w+)(==|=)"([^"]*)"', line) == [
        ("SUBSYSTEM", "==", "gpio"),
        ("KERNEL", "==", "gpiochip*"),
        ("GROUP", "=", "gpio"),
        ("MODE", "=", "0660"),
    ]
    sysusers = (PROJECT / "systemd/sysusers.d/onshi-kiosk.conf").read_text().splitlines()
    assert ["m", "onshi-kiosk", "gpio"] in [line.split() for line in sysusers]


@pytest.mark.parametrize(
    "script", ["usr/lib/onshi-image/enrol-from-boot", "usr/lib/onshi-image/data-grow"]
)
def test_the_boot_scripts_are_valid_shell(script: str) -> None:
    done = subprocess.run(
        ["sh", "-n", str(OVERLAY / script)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
