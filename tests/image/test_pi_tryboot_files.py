"""The Raspberry Pi's A/B boot, as files: autoboot.txt, each slot's cmdline.txt, RAUC's slots.

The boot test runs the GRUB form of the same rule (tests/image/test_update_files.py); on the Pi
the firmware's tryboot reads these files, so they are checked against the backend that writes
autoboot.txt (:class:`kiosk.update.boot_slots.PiAutoboot`) and against each other.
"""

from __future__ import annotations

import argparse
import configparser
import shutil
from pathlib import Path

from kiosk.update.boot_slots import PI_BOOT_PARTITION, BootSlots, PiAutoboot, render_autoboot
from tests.image.conftest import PROVISIONING, load_builder

PI = PROVISIONING / "boot" / "pi"
ROOT_PARTITION = {"A": 5, "B": 6}


def pi_conf() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(PI / "system.conf")
    return parser


def test_the_first_autoboot_commits_slot_a_and_tries_b_only_with_the_flag(tmp_path: Path) -> None:
    text = (PI / "autoboot.txt").read_text()
    assert text == render_autoboot("A", "B")
    shutil.copy(PI / "autoboot.txt", tmp_path / "autoboot.txt")
    assert PiAutoboot(tmp_path).load() == BootSlots("A")


def test_each_slot_is_a_boot_partition_and_a_root_written_together() -> None:
    conf = pi_conf()
    for index, slot in enumerate("AB"):
        root = conf[f"slot.rootfs.{index}"]
        boot = conf[f"slot.boot.{index}"]
        assert root["bootname"] == slot
        assert root["type"] == "ext4"
        assert root["device"] == f"/dev/disk/by-partuuid/@DISKID@-0{ROOT_PARTITION[slot]}"
        assert boot["type"] == "vfat"
        assert boot["parent"] == f"rootfs.{index}"
        # the boot partition autoboot.txt names for the slot is the one RAUC writes for it
        assert boot["device"] == f"/dev/disk/by-partuuid/@DISKID@-0{PI_BOOT_PARTITION[slot]}"


def test_the_pi_takes_the_same_bundles_as_the_amd64_image_but_its_own_architecture() -> None:
    pi = pi_conf()
    amd64 = configparser.ConfigParser(interpolation=None)
    amd64.read(PROVISIONING / "image/etc/rauc/system.conf")
    assert pi["system"]["compatible"] == "onshi-kiosk-arm64"
    for section, key in (
        ("system", "bootloader"),
        ("system", "data-directory"),
        ("system", "bundle-formats"),
        ("keyring", "path"),
        ("keyring", "check-purpose"),
        ("handlers", "bootloader-custom-backend"),
    ):
        assert pi[section][key] == amd64[section][key], (section, key)


def test_each_slots_cmdline_names_its_own_root_and_keeps_the_images_arguments() -> None:
    common = load_builder().cmdline(argparse.Namespace(arch="arm64"))
    for slot, part in ROOT_PARTITION.items():
        line = (PI / f"cmdline-{slot}.txt").read_text()
        assert line == f"root=PARTUUID=@DISKID@-0{part} rauc.slot={slot} {common}\n"
