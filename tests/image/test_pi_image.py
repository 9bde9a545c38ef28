"""The Raspberry Pi image's pieces, made small: its layout, boot files, root files, emulation."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import stat
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from kiosk.update.boot_slots import PI_BOOT_PARTITION
from tests.image.conftest import MIB, PROVISIONING, SECTOR, cpio, disk, fat, load_script

DISK_ID = "6f6e7368"


@pytest.fixture(scope="module")
def pi(builder: ModuleType) -> ModuleType:
    return builder.pi  # type: ignore[no-any-return]


# --- running the root's programs -----------------------------------------------------------


def test_a_foreign_roots_programs_run_under_proot_and_qemu_in_a_mount_namespace(
    pi: ModuleType,
) -> None:
    argv = pi.root_command(Path("/r"), "arm64", ["python3", "-V"], host="amd64")
    assert argv[1] == str(PROVISIONING / "imagelib/syscall_filter.py")
    assert argv[2:6] == ["unshare", "--mount", "--propagation", "private"]
    assert argv[6:11] == ["proot", "-q", "qemu-aarch64-static", "-r", "/r"]
    assert argv[-3:] == ["/", "python3", "-V"]
    binds = {argv[i + 1] for i, arg in enumerate(argv) if arg == "-b"}
    # the build machine's /tmp at the same path: untranslated calls on temporary files work
    assert binds == {"/dev", "/proc", "/sys", "/tmp"}
    assert "/etc/resolv.conf" not in argv  # a package that rewrites it rewrites the root's


def test_a_bases_packages_are_configured_with_no_service_started_and_twice_if_need_be(
    pi: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = merged_usr_root(tmp_path, diversions="")
    (root / "usr/sbin").mkdir()
    debs = tmp_path / "debs"
    debs.mkdir()
    ran: list[list[str]] = []

    def in_root(_root: Path, _arch: str, *argv: str, **kwargs: Any) -> str:
        ran.append(list(argv))
        # while anything runs, a policy-rc.d in the root refuses every service
        assert (root / "usr/sbin/policy-rc.d").read_text() == pi.NO_SERVICES
        assert os.access(root / "usr/sbin/policy-rc.d", os.X_OK)
        if "install" in argv and "--download-only" not in argv:
            raise pi.BuildError("apt-get failed (100)")  # a postinst failing under emulation
        return ""

    monkeypatch.setattr(pi, "in_root", in_root)
    monkeypatch.setattr(pi, "restore_systemd_tools", lambda *_args: None)
    pi.install_base_packages(root, ["pcscd"], debs)
    assert [argv[0] if argv[0] != "apt-get" else argv[-1] for argv in ran] == [
        "update",
        "pcscd",  # downloaded (with the build machine's DNS)
        "pcscd",  # installed (offline)
        "dpkg",
        "dpkg",
    ]
    assert "--download-only" in ran[1]
    assert ran[3] == ["dpkg", "--configure", "-a"]
    assert ran[4] == ["dpkg", "--audit"]
    assert not (root / "usr/sbin/policy-rc.d").exists()


def test_apt_downloads_with_the_build_machines_dns_and_the_roots_own_comes_back(
    pi: ModuleType, tmp_path: Path
) -> None:
    host = Path("/etc/resolv.conf").read_text()
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/resolv.conf").write_text("nameserver 192.0.2.53\n")
    with pi.build_machines_dns(root):
        assert (root / "etc/resolv.conf").read_text() == host
    assert (root / "etc/resolv.conf").read_text() == "nameserver 192.0.2.53\n"
    assert sorted(p.name for p in (root / "etc").iterdir()) == ["resolv.conf"]
    # a package that puts its own there meanwhile (systemd-resolved's link) keeps it
    with pi.build_machines_dns(root):
        (root / "etc/resolv.conf").unlink()
        (root / "etc/resolv.conf").symlink_to("../run/systemd/resolve/stub-resolv.conf")
    assert os.readlink(root / "etc/resolv.conf") == "../run/systemd/resolve/stub-resolv.conf"
    assert sorted(p.name for p in (root / "etc").iterdir()) == ["resolv.conf"]
    # a root with none has none afterwards
    (root / "etc/resolv.conf").unlink()
    with pi.build_machines_dns(root):
        assert (root / "etc/resolv.conf").read_text() == host
    assert not os.path.lexists(root / "etc/resolv.conf")


def test_a_base_whose_packages_stay_unconfigured_is_refused(
    pi: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = merged_usr_root(tmp_path, diversions="")
    (root / "usr/sbin").mkdir()
    (root / "usr/sbin/policy-rc.d").write_text("#!/bin/sh\nexit 0\n")  # the base's own

    def in_root(_root: Path, _arch: str, *argv: str, **kwargs: Any) -> str:
        return (
            "The following packages are only half configured:\n dbus\n" if "--audit" in argv else ""
        )

    monkeypatch.setattr(pi, "in_root", in_root)
    with pytest.raises(pi.BuildError, match="packages left unconfigured in the base's root: The"):
        pi.install_base_packages(root, ["dbus"], tmp_path)
    assert (root / "usr/sbin/policy-rc.d").read_text() == "#!/bin/sh\nexit 0\n"


def test_the_machines_own_architecture_runs_under_chroot(pi: ModuleType) -> None:
    assert pi.root_command(Path("/r"), "amd64", ["ls"], host="amd64") == ["chroot", "/r", "ls"]
    assert pi.root_command(Path("/r"), "arm64", ["ls"], host="arm64") == ["chroot", "/r", "ls"]
    with pytest.raises(pi.BuildError, match="cannot run riscv64"):
        pi.root_command(Path("/r"), "riscv64", ["ls"], host="amd64")


@pytest.mark.parametrize(
    ("arch", "application"), [("amd64", "onshi-kiosk"), ("arm64", "onshi-kiosk[pi]")]
)
def test_the_application_is_installed_with_the_roots_own_python(
    builder: ModuleType,
    pi: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    arch: str,
    application: str,
) -> None:
    calls: list[list[str]] = []

    def record(*argv: Any, **_kwargs: Any) -> str:
        calls.append([str(a) for a in argv])
        return ""

    monkeypatch.setattr(pi, "run", record)
    monkeypatch.setattr(pi, "host_arch", lambda: "amd64")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "pip-24.0-py3-none-any.whl").write_bytes(b"")
    root = tmp_path / "root"
    (root / "var/tmp").mkdir(parents=True)
    builder.install_app(root, arch, wheels, 0)
    assert len(calls) == 2
    # the wheels are in the root's own /var/tmp (under proot its /tmp is the build machine's)
    assert "/var/tmp/onshi-wheels/pip-24.0-py3-none-any.whl/pip" in calls[1]
    assert "--no-user" in calls[1]  # into the venv, whatever pip thinks it may write
    assert not [arg for arg in calls[1] if arg.startswith("/tmp/") and arg != str(root)]
    first = calls[0]
    if arch == "amd64":
        assert first[:2] == ["chroot", str(root)]
    else:
        assert first[6:9] == ["proot", "-q", "qemu-aarch64-static"]
    assert "--system-site-packages" not in first  # the venv holds all it needs, lgpio too
    assert calls[1][-1] == application  # the Raspberry Pi's: with its GPIO library
    assert not (root / "var/tmp/onshi-wheels").exists()


# --- the layout --------------------------------------------------------------------------------


def test_the_layout_is_seven_partitions_with_the_roots_and_data_in_the_extended_one(
    pi: ModuleType,
) -> None:
    parts = pi.layout(65536, 524288, 5242880, 131072)
    assert [p[0] for p in parts] == [1, 2, 3, 4, 5, 6, 7]
    assert [p[3] for p in parts] == ["c", "c", "c", "5", "83", "83", "83"]
    by_number = {number: (start, size) for number, start, size, _kind in parts}
    assert by_number[1][0] == 2048
    assert by_number[2][1] == by_number[3][1]  # boot A and B
    assert by_number[5][1] == by_number[6][1]  # root A and B
    ext_start, ext_size = by_number[4]
    for number in (5, 6, 7):
        start, size = by_number[number]
        assert ext_start < start
        assert start + size <= ext_start + ext_size
    spans = sorted(v for k, v in by_number.items() if k != 4)
    for (start, size), (following, _) in itertools.pairwise(spans):
        assert start + size <= following  # no overlap
        assert following % 2048 == 0


def test_the_disk_has_autoboot_boot_a_root_a_and_data_where_the_table_says(
    pi: ModuleType, tmp_path: Path
) -> None:
    pieces = {}
    for name, mib, fill in (("autoboot", 1, 1), ("boot", 2, 2), ("root", 3, 5), ("data", 1, 7)):
        pieces[name] = tmp_path / name
        pieces[name].write_bytes(bytes([fill]) * mib * MIB)
    out = tmp_path / "pi.img"
    pi.assemble(out, f"0x{DISK_ID}", 4, *(pieces[n] for n in ("autoboot", "boot", "root", "data")))
    dump = json.loads(
        subprocess.run(["sfdisk", "-J", str(out)], capture_output=True, check=True).stdout
    )["partitiontable"]
    assert dump["id"] == f"0x{DISK_ID}"
    table = {int(p["node"].rsplit("img", 1)[1]): p for p in dump["partitions"]}
    assert sorted(table) == [1, 2, 3, 4, 5, 6, 7]
    assert [table[n]["type"] for n in range(1, 8)] == ["c", "c", "c", "5", "83", "83", "83"]
    assert table[5]["size"] == table[6]["size"] == 4 * MIB // SECTOR
    with out.open("rb") as f:
        for number, fill in ((1, 1), (2, 2), (3, 0), (5, 5), (6, 0), (7, 7)):
            f.seek(table[number]["start"] * SECTOR + 4096)
            assert f.read(1) == bytes([fill]), number
    end = table[7]["start"] + table[7]["size"]
    assert table[4]["start"] + table[4]["size"] == end
    assert out.stat().st_size == (end + 2048) * SECTOR
    # the boot tests find the partitions, logical ones included, where sfdisk does
    found = load_script("image-test").partitions(out)
    assert found == {n: (p["start"] * SECTOR, p["size"] * SECTOR) for n, p in table.items()}


def test_a_root_bigger_than_its_slot_is_refused(pi: ModuleType, tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.write_bytes(b"\0" * MIB)
    big = tmp_path / "big"
    big.write_bytes(b"\0" * 3 * MIB)
    with pytest.raises(pi.BuildError, match=r"does not fit its slot \(2 MiB\)"):
        pi.assemble(tmp_path / "x.img", f"0x{DISK_ID}", 2, small, small, big, small)


# --- the boot partitions -------------------------------------------------------------------


def test_config_txt_boots_debians_kernel_in_64_bit_with_the_watchdog_and_kms(
    pi: ModuleType,
) -> None:
    lines = pi.config_txt("touch-display-2", "vmlinuz-6.1.0-28-arm64", "initrd.img-6.1.0-28-arm64")
    settings = [line for line in lines.splitlines() if not line.startswith("#")]
    for line in (
        "arm_64bit=1",
        "kernel=vmlinuz-6.1.0-28-arm64",
        "initramfs initrd.img-6.1.0-28-arm64 followkernel",
        "enable_uart=1",
        "dtparam=watchdog=on",
        "dtoverlay=vc4-kms-v3d",
        "dtoverlay=vc4-kms-dsi-ili9881-7inch",
        "display_auto_detect=0",
    ):
        assert line in settings, line
    assert "auto_initramfs=1" not in settings


def test_config_txt_of_a_raspberry_pi_os_base_lets_the_firmware_pick_its_kernel(
    pi: ModuleType,
) -> None:
    settings = pi.config_txt("touch-display").splitlines()
    assert "auto_initramfs=1" in settings
    assert "dtoverlay=vc4-kms-dsi-7inch" in settings
    assert not [line for line in settings if line.startswith(("kernel=", "initramfs "))]
    with pytest.raises(pi.BuildError, match="unknown display 'hdmi'"):
        pi.config_txt("hdmi")


def test_the_same_boot_files_boot_each_slot_with_its_own_root(
    pi: ModuleType, tmp_path: Path
) -> None:
    pi.write_boot_slot(tmp_path, "touch-display", DISK_ID, "vmlinuz-6.1", "initrd.img-6.1")
    for slot, root in (("A", 5), ("B", 6)):
        line = (tmp_path / f"cmdline-{slot}.txt").read_text()
        assert line.startswith(f"root=PARTUUID={DISK_ID}-0{root} rauc.slot={slot} ro ")
        assert line.endswith("\n")
        assert line.count("\n") == 1
    # a firmware that knows no [boot_partition] filter boots slot A, as a fresh card does
    assert (tmp_path / "cmdline.txt").read_text() == (tmp_path / "cmdline-A.txt").read_text()
    config = (tmp_path / "config.txt").read_text().splitlines()
    assert "kernel=vmlinuz-6.1" in config
    # the partition autoboot.txt booted (2 for A, 3 for B) picks the command line
    sections: dict[str, list[str]] = {}
    current = "[all]"
    for line in config:
        if line.startswith("["):
            current = line
        elif line and not line.startswith("#"):
            sections.setdefault(current, []).append(line)
    for slot, partition in PI_BOOT_PARTITION.items():
        assert sections[f"[boot_partition={partition}]"] == [f"cmdline=cmdline-{slot}.txt"]
    assert not [line for line in sections["[all]"] if line.startswith("cmdline=")]


def debian_root(
    tmp_path: Path,
    trees: tuple[str, ...] = ("bcm2711-rpi-4-b.dtb",),
    initramfs: tuple[str, ...] = ("init", "scripts/local", "usr/bin/sh"),
) -> Path:
    root = tmp_path / "root"
    version = "6.1.0-28-arm64"
    (root / "boot").mkdir(parents=True)
    (root / f"boot/vmlinuz-{version}").write_bytes(b"kernel")
    (root / f"boot/initrd.img-{version}").write_bytes(gzip.compress(cpio(initramfs)))
    broadcom = root / f"usr/lib/linux-image-{version}/broadcom"
    broadcom.mkdir(parents=True)
    for name in (*trees, "bcm2837-rpi-3-b.dtb"):
        (broadcom / name).write_bytes(b"dtb")
    (broadcom.parent / "rockchip.dtb").write_bytes(b"other")
    return root


def firmware_deb(tmp_path: Path, names: tuple[str, ...] = ("start4.elf", "fixup4.dat")) -> Path:
    tree = tmp_path / "deb"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(
        "Package: raspi-firmware\nVersion: 1\nArchitecture: all\n"
        "Maintainer: t <t@example.org>\nDescription: t\n"
    )
    firmware = tree / "usr/lib/raspi-firmware"
    firmware.mkdir(parents=True)
    for name in (*names, "bootcode.bin"):
        (firmware / name).write_bytes(name.encode())
    deb = tmp_path / "raspi-firmware_1_all.deb"
    subprocess.run(["dpkg-deb", "-b", str(tree), str(deb)], check=True, capture_output=True)
    return deb


def test_debians_boot_files_are_the_firmware_kernel_initramfs_and_pi_device_trees(
    pi: ModuleType, tmp_path: Path
) -> None:
    dest = tmp_path / "boot"
    kernel, initramfs = pi.debian_boot_files(debian_root(tmp_path), firmware_deb(tmp_path), dest)
    assert (kernel, initramfs) == ("vmlinuz-6.1.0-28-arm64", "initrd.img-6.1.0-28-arm64")
    assert sorted(p.name for p in dest.iterdir()) == [
        "bcm2711-rpi-4-b.dtb",  # the Pi 4's (and a Pi 5's, bcm2712, when the kernel has it)
        "bootcode.bin",
        "fixup4.dat",
        "initrd.img-6.1.0-28-arm64",
        "start4.elf",
        "vmlinuz-6.1.0-28-arm64",
    ]
    assert (dest / kernel).read_bytes() == b"kernel"


def test_debian_boot_files_without_a_pi_4_device_tree_or_firmware_are_refused(
    pi: ModuleType, tmp_path: Path
) -> None:
    with pytest.raises(pi.BuildError, match="no Raspberry Pi 4 device tree"):
        pi.debian_boot_files(
            debian_root(tmp_path, trees=()), firmware_deb(tmp_path), tmp_path / "b"
        )
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(pi.BuildError, match=r"has no usr/lib/raspi-firmware/start4\.elf"):
        pi.debian_boot_files(
            debian_root(other), firmware_deb(other, names=("start.elf",)), other / "b"
        )


def test_an_initramfs_its_init_cannot_run_in_is_refused(pi: ModuleType, tmp_path: Path) -> None:
    # the kernel would stop with "No working init found"
    root = debian_root(tmp_path, initramfs=("init", "scripts/local"))
    with pytest.raises(pi.BuildError, match=r"cannot boot: it lacks a shell \(usr/bin/sh"):
        pi.debian_boot_files(root, firmware_deb(tmp_path), tmp_path / "b")


def test_a_cached_firmware_package_is_not_downloaded_again(
    pi: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "raspi-firmware_1.20220830+ds-1_all.deb").write_bytes(b"")

    def offline(*_argv: Any, **_kwargs: Any) -> str:
        raise AssertionError("apt-get ran")

    monkeypatch.setattr(pi, "run", offline)
    found = pi.raspi_firmware(tmp_path, "http://deb.example/debian", "bookworm", tmp_path)
    assert found.name == "raspi-firmware_1.20220830+ds-1_all.deb"


def test_the_autoboot_and_boot_partitions_are_fat_with_their_files(
    builder: ModuleType, pi: ModuleType, tmp_path: Path
) -> None:
    files = tmp_path / "autoboot"
    pi.autoboot_files(files)
    image = tmp_path / "autoboot.vfat"
    builder.fat_image(image, pi.AUTOBOOT_MIB, files, "AUTOBOOT", "6f6e7311", 1700000000, bits=16)
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    listing = subprocess.run(
        ["mdir", "-b", "-i", str(image), "::/"], capture_output=True, text=True, env=env
    )
    assert listing.stdout.split() == ["::/autoboot.txt"]
    text = subprocess.run(
        ["mtype", "-i", str(image), "::/autoboot.txt"], capture_output=True, text=True, env=env
    ).stdout
    assert "tryboot_a_b=1" in text
    assert "boot_partition=2" in text
    assert image.read_bytes()[54:62] == b"FAT16   "  # the boot sector's file system type


# --- a Raspberry Pi OS base ----------------------------------------------------------------


def test_the_base_boot_files_are_copied_but_its_config_and_cmdline(
    pi: ModuleType, tmp_path: Path
) -> None:
    boot = tmp_path / "boot.vfat"
    fat(
        boot,
        40,
        {n: n.encode() for n in ("config.txt", "cmdline.txt", "start4.elf", "kernel8.img")},
    )
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    subprocess.run(["mmd", "-i", str(boot), "::/overlays"], check=True, env=env)
    dtbo = tmp_path / "vc4-kms-v3d.dtbo"
    dtbo.write_bytes(b"overlay")
    subprocess.run(["mcopy", "-i", str(boot), str(dtbo), "::/overlays/"], check=True, env=env)
    image = disk(tmp_path / "raspios.img", [(0x0C, boot)])
    dest = tmp_path / "files"
    pi.base_boot_files(image, 2048 * SECTOR, dest)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == [
        "kernel8.img",
        "overlays",
        "overlays/vc4-kms-v3d.dtbo",
        "start4.elf",
    ]
    assert (dest / "overlays/vc4-kms-v3d.dtbo").read_bytes() == b"overlay"


@pytest.mark.skipif(os.geteuid() != 0, reason="keeping owners needs root")
def test_the_base_root_is_extracted_with_owners_modes_and_links(
    pi: ModuleType, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    (tree / "usr/bin").mkdir(parents=True)
    (tree / "tmp").mkdir()
    for name, mode, owner in (
        ("su", 0o4755, (0, 0)),
        ("wall", 0o2755, (0, 5)),
        ("x", 0o640, (1000, 1001)),
    ):
        (tree / "usr/bin" / name).write_bytes(name.encode())
        os.chown(tree / "usr/bin" / name, *owner)
        os.chmod(tree / "usr/bin" / name, mode)
    os.chmod(tree / "tmp", 0o1777)
    (tree / "usr/bin/sh").symlink_to("dash")
    root_fs = tmp_path / "root.ext4"
    root_fs.write_bytes(b"")
    os.truncate(root_fs, 8 * MIB)
    subprocess.run(["mke2fs", "-q", "-t", "ext4", "-d", str(tree), str(root_fs)], check=True)
    image = disk(tmp_path / "raspios.img", [(0x83, root_fs)])
    dest = tmp_path / "root"
    pi.extract_root(image, 2048 * SECTOR, dest)
    for name, mode, owner in (
        ("su", 0o4755, (0, 0)),
        ("wall", 0o2755, (0, 5)),
        ("x", 0o640, (1000, 1001)),
    ):
        info = (dest / "usr/bin" / name).lstat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (mode, *owner), name
    assert stat.S_IMODE((dest / "tmp").stat().st_mode) == 0o1777
    assert os.readlink(dest / "usr/bin/sh") == "dash"


def test_special_modes_are_read_from_debugfs_listings(pi: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "usr/bin/su").write_bytes(b"")
    (tmp_path / "usr/bin/ls").write_bytes(b"")
    listing = (
        'debugfs: ls -p "/usr/bin"\n'
        "/12/040755/0/0/.//\n/2/040755/0/0/..//\n"
        "/13/104755/0/0/su/3/\n/14/100755/0/0/ls/3/\n/15/120777/0/0/sh/4/\n"
    )
    assert pi.restore_special_modes(tmp_path, listing) == 1
    assert stat.S_IMODE((tmp_path / "usr/bin/su").stat().st_mode) == 0o4755


# --- the root's own files and the options -------------------------------------------------


def test_the_pi_root_has_the_pi_slots_its_data_partition_and_autoboot_mounted(
    pi: ModuleType, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    (root / "etc/rauc").mkdir(parents=True)
    (root / "boot/firmware").mkdir(parents=True)
    fstab = (PROVISIONING / "image/etc/fstab").read_text().replace("@DISKID@", DISK_ID)
    (root / "etc/fstab").write_text(fstab)
    pi.adjust_root(root, DISK_ID)
    conf = (root / "etc/rauc/system.conf").read_text()
    assert f"device=/dev/disk/by-partuuid/{DISK_ID}-05" in conf
    assert "@DISKID@" not in conf
    mounts = {
        row.split()[1]: row.split()[0]
        for row in (root / "etc/fstab").read_text().splitlines()
        if row and not row.startswith("#")
    }
    assert mounts["/data"] == f"PARTUUID={DISK_ID}-07"
    assert mounts["/boot/autoboot"] == f"PARTUUID={DISK_ID}-01"
    assert "/boot/firmware" not in mounts
    assert os.readlink(root / "boot/firmware") == "autoboot"
    (root / "etc/fstab").write_text("# nothing\n")
    with pytest.raises(pi.BuildError, match="etc/fstab of the image has no line"):
        pi.adjust_root(root, DISK_ID)


def test_the_options_choose_the_arch_and_the_display(builder: ModuleType, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    common = ["--update-ca", str(ca), "--out", str(tmp_path / "k.img")]
    options = builder.parse(["--base", "debian", "--arch", "arm64", *common])
    assert (options.arch, options.display) == ("arm64", "touch-display-2")
    options = builder.parse(["--base", "pi.img", "--display", "touch-display", *common])
    assert (options.arch, options.display) == ("arm64", "touch-display")
    assert builder.parse(["--base", "debian", *common]).arch == "amd64"
    with pytest.raises(SystemExit):
        builder.parse(["--base", "debian", "--display", "hdmi", *common])


def test_a_logical_data_partition_grows_after_its_extended_one(tmp_path: Path) -> None:
    script = (PROVISIONING / "image/usr/lib/onshi-image/data-grow").read_text()
    grow = script.index('if [ "$number" -gt 4 ]')
    assert grow < script.index('-N "$number"')
    assert "--part-type" in script[grow:]


def merged_usr_root(tmp_path: Path, *, diversions: str) -> Path:
    """A root's bare bones as Debian 12 has them (/bin a link to usr/bin), with dpkg's
    record of diversions."""
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    (root / "bin").symlink_to("usr/bin")
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/diversions").write_text(diversions)
    (root / "etc").mkdir()
    return root


def test_systemds_tools_are_diverted_to_a_no_op_under_emulation_and_restored(
    pi: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dash = "/usr/share/man/man1/sh.1.gz\n/usr/share/man/man1/sh.distrib.1.gz\ndash\n"
    root = merged_usr_root(tmp_path, diversions=dash)
    (root / "usr/bin/systemd-tmpfiles").write_bytes(b"\x7fELF tmpfiles")
    pi.divert_systemd_tools(root)
    diversions = (root / "var/lib/dpkg/diversions").read_text()
    assert diversions.startswith(dash)
    assert "/bin/systemd-tmpfiles\n/bin/systemd-tmpfiles.onshi-real\n:\n" in diversions
    assert "/bin/systemd-hwdb\n/bin/systemd-hwdb.onshi-real\n:\n" in diversions
    for name in ("systemd-tmpfiles", "systemd-hwdb"):
        assert (root / "usr/bin" / name).read_text() == pi.NOOP
    assert (root / "usr/bin/systemd-tmpfiles.onshi-real").read_bytes() == b"\x7fELF tmpfiles"
    # what dpkg does with the diversion: the package's file goes to the diverted name
    (root / "usr/bin/systemd-hwdb.onshi-real").write_bytes(b"\x7fELF hwdb")
    ran: list[list[str]] = []

    def record(argv: Any, **_kwargs: Any) -> subprocess.CompletedProcess[str]:
        ran.append([str(a) for a in argv])
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(pi.subprocess, "run", record)
    monkeypatch.setattr(pi, "run", lambda *argv, **_kw: record(argv))
    monkeypatch.setattr(pi.shutil, "which", lambda name: f"/usr/bin/{name}")
    pi.restore_systemd_tools(root, "arm64")
    assert (root / "var/lib/dpkg/diversions").read_text() == dash
    assert (root / "usr/bin/systemd-tmpfiles").read_bytes() == b"\x7fELF tmpfiles"
    assert (root / "usr/bin/systemd-hwdb").read_bytes() == b"\x7fELF hwdb"
    assert not list((root / "usr/bin").glob("*.onshi-real"))
    assert ran == [
        ["systemd-tmpfiles", f"--root={root}", "--create"],
        ["systemd-hwdb", f"--root={root}", "--usr", "update"],
    ]


def test_without_udev_on_the_build_machine_the_roots_own_hwdb_runs_emulated(
    pi: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = merged_usr_root(tmp_path, diversions="")
    pi.divert_systemd_tools(root)
    (root / "usr/bin/systemd-hwdb.onshi-real").write_bytes(b"\x7fELF hwdb")
    ran: list[list[str]] = []

    def record(argv: Any, **_kwargs: Any) -> subprocess.CompletedProcess[str]:
        ran.append([str(a) for a in argv])
        return subprocess.CompletedProcess(argv, 0, "", "")

    def fails(*argv: Any, **_kwargs: Any) -> str:
        ran.append([str(a) for a in argv])
        raise pi.BuildError("proot failed")

    monkeypatch.setattr(pi.subprocess, "run", record)
    monkeypatch.setattr(pi, "run", fails)
    monkeypatch.setattr(pi.shutil, "which", lambda _name: None)
    pi.restore_systemd_tools(root, "arm64")  # a failure is logged, not fatal
    assert "proot" in ran[-1]
    assert ran[-1][-3:] == ["systemd-hwdb", "--usr", "update"]
