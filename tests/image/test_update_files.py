"""The image's update files agree with each other: the boot loader's slots, RAUC's slots, the
partitions fstab mounts, the unit that commits or rolls back a try."""

from __future__ import annotations

import configparser
import re
import subprocess
from pathlib import Path

from tests.image.conftest import PROVISIONING, load_builder

OVERLAY = PROVISIONING / "image"
GRUB_CFG = PROVISIONING / "boot" / "grub.cfg"


def rauc_conf() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(OVERLAY / "etc/rauc/system.conf")
    return parser


def test_rauc_and_the_boot_loader_name_the_same_partitions_for_each_slot() -> None:
    conf = rauc_conf()
    slots = {
        conf[s]["bootname"]: conf[s]["device"]
        for s in conf.sections()
        if s.startswith("slot.rootfs.")
    }
    assert slots == {
        "A": "/dev/disk/by-partuuid/@DISKID@-02",
        "B": "/dev/disk/by-partuuid/@DISKID@-03",
    }
    script = GRUB_CFG.read_text()
    assert 'if [ "$1" = B ]; then set part=3; else set part=2; fi' in script
    assert "root=PARTUUID=@DISKID@-0$part rauc.slot=$1" in script
    fstab = (OVERLAY / "etc/fstab").read_text()
    assert re.search(r"^PARTUUID=@DISKID@-04\s+/data\s", fstab, re.MULTILINE)


def test_the_try_is_forgotten_on_disk_before_the_tried_slot_boots() -> None:
    script = GRUB_CFG.read_text()
    save = script.index("if save_env --file $env ONSHI_TRY; then")
    assert script.index("set ONSHI_TRY=\n", script.index('if [ -n "$ONSHI_TRY" ]')) < save
    assert save < script.index("boot_slot $slot")
    # and a slot that cannot be started gives way to the committed one
    assert script.rstrip().endswith("boot_slot $ONSHI_SLOT\nfi")


def test_only_signed_verity_bundles_for_this_architecture_are_taken() -> None:
    conf = rauc_conf()
    assert conf["system"]["compatible"] == "onshi-kiosk-@ARCH@"
    assert conf["system"]["bundle-formats"] == "-plain"
    assert conf["keyring"]["path"] == "/etc/rauc/update-ca.pem"
    assert conf["keyring"]["check-purpose"] == "codesign"
    # RAUC keeps its status on the data partition, which updates never touch
    assert conf["system"]["data-directory"].startswith("/data/")
    assert conf["system"]["bootloader"] == "custom"
    backend = OVERLAY / conf["handlers"]["bootloader-custom-backend"].lstrip("/")
    assert backend.stat().st_mode & 0o111
    assert "kiosk update backend" in backend.read_text()
    done = subprocess.run(["sh", "-n", str(backend)], capture_output=True, check=False)
    assert done.returncode == 0


def test_the_update_units_are_installed_and_the_confirm_never_holds_up_the_boot() -> None:
    builder = load_builder()
    assert "onshi-update-confirm.service" in builder.UNITS
    assert "onshi-update-confirm.service" in builder.ENABLE
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.read(PROVISIONING.parent / "systemd/onshi-update-confirm.service")
    assert unit["Service"]["Type"] == "exec"
    assert "kiosk update confirm --within" in unit["Service"]["ExecStart"]
    assert "rauc" in builder.PACKAGES_COMMON
    assert "rauc-service" in builder.PACKAGES_COMMON  # rauc install talks to it over D-Bus
    assert "squashfs-tools" in builder.PACKAGES_COMMON  # the payload read before writing


def deadline_script(tmp_path: Path, cmdline: str, decided: bool) -> subprocess.CompletedProcess:
    """onshi-update-deadline's command, its paths moved into tmp_path, one second to wait,
    and a systemctl that only notes it was asked to reboot (a reboot cannot run here)."""
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.read(PROVISIONING.parent / "systemd/onshi-update-deadline.service")
    command = unit["Service"]["ExecStart"].removeprefix("/usr/bin/sh -c ").strip("'")
    (tmp_path / "cmdline").write_text(cmdline)
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    (run / "decided").unlink(missing_ok=True)
    if decided:
        (run / "decided").write_text("committed\n")
    command = (
        command.replace("/proc/cmdline", str(tmp_path / "cmdline"))
        .replace("/proc/device-tree", str(tmp_path / "device-tree"))
        .replace("/run/onshi-update", str(run))
    )
    stub = tmp_path / "bin"
    stub.mkdir(exist_ok=True)
    (stub / "systemctl").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/asked\n')
    (stub / "systemctl").chmod(0o755)
    env = {"PATH": f"{stub}:/usr/bin:/bin", "ONSHI_TRIAL_S": "-119"}
    return subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True)


def test_the_deadline_reboots_a_try_nothing_decided_and_leaves_other_boots_alone(
    tmp_path: Path,
) -> None:
    deadline_script(tmp_path, "root=PARTUUID=6f6e7368-02 rauc.slot=A ro\n", decided=False)
    assert not (tmp_path / "asked").exists(), "not a try: nothing to do"
    deadline_script(tmp_path, "rauc.slot=B onshi.trial=1 ro\n", decided=True)
    assert not (tmp_path / "asked").exists(), "decided: the confirm's word stands"
    done = deadline_script(tmp_path, "rauc.slot=B onshi.trial=1 ro\n", decided=False)
    assert (tmp_path / "asked").read_text() == "reboot\n"
    assert "rebooting into the committed slot" in done.stdout


def test_the_deadline_knows_the_raspberry_pis_tryboot(tmp_path: Path) -> None:
    flag = tmp_path / "device-tree/chosen/bootloader/tryboot"
    flag.parent.mkdir(parents=True)
    flag.write_bytes((1).to_bytes(4, "big"))  # a device-tree cell: big-endian 32 bits
    deadline_script(tmp_path, "rauc.slot=B ro\n", decided=False)
    assert (tmp_path / "asked").read_text() == "reboot\n"
