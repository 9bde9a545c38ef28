"""The Raspberry Pi (arm64) image: its root made on an x86 machine, its boot files, its layout.

Programs of an arm64 root cannot run on the build machine as they are (and there is no binfmt
here): each one runs under ``proot -q qemu-aarch64-static`` instead of ``chroot``
(:func:`root_command` picks one or the other). The layout is provisioning/boot/pi/system.conf's:

    1 autoboot (FAT: autoboot.txt)  2 boot A (FAT)  3 boot B (FAT, empty)  4 extended:
    5 root A (ext4)  6 root B (ext4, empty)  7 data (ext4, grown to fill the card at first boot)

Boot slot B and root slot B are holes in the image file: the first update writes both.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from imagelib import initramfs
from imagelib.common import (
    ELF_MACHINES,
    MIB,
    SECTOR,
    BuildError,
    log,
    mbr_entries,
    run,
    sha256,
)

HERE = Path(__file__).resolve().parent.parent
PI_BOOT = HERE / "boot" / "pi"
HOST_ARCHES = {"x86_64": "amd64", "aarch64": "arm64"}
QEMU = {"arm64": "qemu-aarch64-static", "amd64": "qemu-x86_64-static"}
SYSCALL_FILTER = Path(__file__).resolve().parent / "syscall_filter.py"
AUTOBOOT_MIB = 32
#: MBR types: FAT32 (LBA), the extended partition, Linux
FAT, EXTENDED, LINUX = "c", "5", "83"
GAP = 2048  # sectors before each partition (1 MiB): alignment, and each logical one's EBR
#: The Touch Display (7", 800x480) is landscape and the Touch Display 2 (7", 720x1280)
#: portrait in their native orientation: the kiosk's layouts (kiosk/ui/layouts.py) are drawn
#: for those, so neither panel is rotated and the touch needs no mapping.
DISPLAYS = {
    "touch-display": "dtoverlay=vc4-kms-dsi-7inch",
    "touch-display-2": "dtoverlay=vc4-kms-dsi-ili9881-7inch",
}


# --- running the root's programs ------------------------------------------------------------

def host_arch() -> str:
    return HOST_ARCHES.get(platform.machine(), platform.machine())


def root_command(root: Path, arch: str, argv: Sequence[str | Path],
                 host: str | None = None) -> list[str]:
    """The command running ARGV inside ROOT: chroot for this machine's architecture, proot
    with QEMU's user-mode emulator for another (no binfmt needed: proot starts it). Nothing
    of the build machine is seen in the root but /dev, /proc, /sys and /tmp: a package that
    rewrites a file (systemd-resolved's /etc/resolv.conf) must rewrite the root's."""
    args = [str(a) for a in argv]
    if arch == (host or host_arch()):
        return ["chroot", str(root), *args]
    if arch not in QEMU:
        raise BuildError(f"cannot run {arch} programs on this machine")
    # /tmp is the build machine's, at the same path: a system call proot does not translate
    # (statx, as openssh-server's postinst and gpgv's check of apt's signatures make them on
    # their temporary files) then finds the same file the program made
    binds = ["-b", "/dev", "-b", "/proc", "-b", "/sys", "-b", "/tmp"]
    # in a mount namespace of its own: proot hands mount(2) and umount(2) on to the kernel
    # with the paths translated, and debootstrap's second stage unmounts /sys, /dev/shm, ...
    # at its end, which would be the build machine's own; faccessat2 and statx, which proot
    # does not translate, refused so that the emulator falls back to calls it does
    # (syscall_filter.py: without it every `[ -x FILE ]` of a script checked the build
    # machine's FILE, and the initramfs was made without the hooks the build machine lacks)
    return [sys.executable, str(SYSCALL_FILTER),
            "unshare", "--mount", "--propagation", "private", "proot", "-q", QEMU[arch],
            "-r", str(root), *binds, "-w", "/", *args]


def in_root(root: Path, arch: str, *argv: str | Path, env: dict[str, str] | None = None,
            capture: bool = False) -> str:
    return run(*root_command(root, arch, argv), env=env, capture=capture)


@contextlib.contextmanager
def build_machines_dns(root: Path) -> Iterator[None]:
    """The build machine's name servers in the root while apt downloads: a copy of its
    resolv.conf in place of the root's own, which comes back afterwards, unless a package
    installed meanwhile put its own there (systemd-resolved's link to its stub)."""
    resolv = root / "etc/resolv.conf"
    saved = root / "etc/resolv.conf.onshi-build"
    had = os.path.lexists(resolv)
    if had:
        resolv.rename(saved)
    copy = Path("/etc/resolv.conf").read_text() if Path("/etc/resolv.conf").exists() else ""
    resolv.write_text(copy)
    try:
        yield
    finally:
        ours = resolv.is_file() and not resolv.is_symlink() and resolv.read_text() == copy
        if ours:
            resolv.unlink()
            if had:
                saved.rename(resolv)
        elif had:
            saved.unlink()


#: systemd's tools that make proot abort (an empty path given to readlinkat or fstatat:
#: compare_paths2's assertion, proot-me/proot#366): while packages are configured under
#: emulation each is diverted (dpkg-divert's record, written here) to a no-op, then run from
#: the build machine with --root (the same systemd version: both Debian 12)
DIVERTED = ("/bin/systemd-tmpfiles", "/bin/systemd-hwdb")
NOOP = "#!/bin/sh\n# build-image: run from the build machine with --root afterwards\nexit 0\n"


def divert_systemd_tools(root: Path) -> None:
    with (root / "var/lib/dpkg/diversions").open("a") as f:
        for path in DIVERTED:
            f.write(f"{path}\n{path}.onshi-real\n:\n")
            target = (root / path.lstrip("/")).parent.resolve() / Path(path).name
            if target.exists():
                target.rename(target.with_name(target.name + ".onshi-real"))
            target.write_text(NOOP)
            target.chmod(0o755)


def restore_systemd_tools(root: Path, arch: str) -> None:
    diversions = root / "var/lib/dpkg/diversions"
    lines = diversions.read_text().splitlines()
    triples = [lines[i:i + 3] for i in range(0, len(lines), 3)]
    kept = [t for t in triples if t[0] not in DIVERTED]
    diversions.write_text("".join(f"{line}\n" for t in kept for line in t))
    for path in DIVERTED:
        target = (root / path.lstrip("/")).parent.resolve() / Path(path).name
        real = target.with_name(target.name + ".onshi-real")
        if real.exists():
            target.unlink(missing_ok=True)
            real.rename(target)
        elif target.is_file() and target.read_text(errors="replace") == NOOP:
            target.unlink()
    log("systemd-tmpfiles of the build machine, --root")
    done = subprocess.run(["systemd-tmpfiles", f"--root={root}", "--create"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        log(f"systemd-tmpfiles --root: exit {done.returncode} (some lines not applied): "
            + " ".join(done.stderr.strip().splitlines()[-1:]))
    # systemd-hwdb is udev's, which a build machine seldom has: the root's own, emulated then
    try:
        if shutil.which("systemd-hwdb"):
            run("systemd-hwdb", f"--root={root}", "--usr", "update", capture=True)
        elif (root / "usr/bin/systemd-hwdb").exists():
            in_root(root, arch, "systemd-hwdb", "--usr", "update", capture=True)
    except BuildError as error:
        log(f"udev's hardware database not built ({error}): udev runs without it")


def debootstrap_foreign(root: Path, arch: str, packages: list[str], debs: Path, mirror: str,
                        suite: str, env: dict[str, str]) -> None:
    """debootstrap's two stages: unpacking here, configuring under the emulator."""
    run("debootstrap", "--foreign", "--variant=minbase", f"--arch={arch}",
        f"--include={','.join(packages)}", f"--cache-dir={debs}", "--components=main",
        suite, root, mirror, env=env)
    emulator = shutil.which(QEMU[arch])
    if emulator is None:
        raise BuildError(f"{QEMU[arch]} is not installed (make image installs it)")
    shutil.copy(emulator, root / "usr/bin" / QEMU[arch])
    log(f"debootstrap's second stage under {QEMU[arch]} (slow: every program is emulated)")
    divert_systemd_tools(root)
    # INITRD=No: the kernel's postinst hook makes no initramfs, and initramfs-tools' own
    # postinst then has none to update; made once below, not twice (~12 min each emulated)
    in_root(root, arch, "/debootstrap/debootstrap", "--second-stage",
            env=dict(env, DEBOOTSTRAP_DIR="/debootstrap", PATH="/usr/sbin:/usr/bin:/sbin:/bin",
                     INITRD="No"))
    restore_systemd_tools(root, arch)
    for kernel in sorted((root / "boot").glob("vmlinuz-*")):
        version = kernel.name.removeprefix("vmlinuz-")
        if not (root / "boot" / f"initrd.img-{version}").exists():
            log(f"update-initramfs -c -k {version} under {QEMU[arch]}")
            in_root(root, arch, "update-initramfs", "-c", "-k", version,
                    env=dict(env, PATH="/usr/sbin:/usr/bin:/sbin:/bin"))


# --- a Raspberry Pi OS base -----------------------------------------------------------------

def extract_root(image: Path, offset: int, dest: Path) -> None:
    """The files of the ext4 partition at OFFSET, with their owners and modes (debugfs rdump,
    as root; rdump changes the owner after the mode, which drops set-user/group-ID bits: they
    are read back with ``ls -p`` and set again). Extended attributes are not kept."""
    dest.mkdir(parents=True)
    source = f"{image}?offset={offset}"
    run("debugfs", "-R", f"rdump / {dest}", source, capture=True)
    script = dest.parent / f"{dest.name}.ls"
    dirs = [p for p in [dest, *dest.rglob("*")] if p.is_dir() and not p.is_symlink()]
    with script.open("w") as f:
        for path in dirs:
            name = "/" + path.relative_to(dest).as_posix().lstrip(".")
            if '"' in name or "\n" in name:
                raise BuildError(f"a file name debugfs cannot take: {name!r}")
            f.write(f'ls -p "{name}"\n')
    out = subprocess.run(["debugfs", "-f", str(script), source], capture_output=True,
                         text=True, errors="surrogateescape", check=False).stdout
    script.unlink()
    restore_special_modes(dest, out)


def restore_special_modes(dest: Path, listing: str) -> int:
    """Set again the set-user-ID, set-group-ID and sticky bits ``ls -p`` lines show."""
    folder = "/"
    count = 0
    for line in listing.splitlines():
        if line.startswith("debugfs: ls -p "):
            folder = line.removeprefix("debugfs: ls -p ").strip('"')
            continue
        fields = line.split("/")
        if len(fields) < 7 or fields[5] in (".", ".."):
            continue
        mode = int(fields[2], 8)
        if mode & 0o7000 and (mode & 0o170000) != 0o120000:
            path = dest / folder.lstrip("/") / fields[5]
            os.chmod(path, mode & 0o7777)
            count += 1
    return count


def install_base_packages(root: Path, packages: list[str], debs: Path) -> None:
    """The kiosk's packages added with the base's own apt sources (network), under proot.

    No service is started while they are configured (a policy-rc.d that says no, as image
    builds do, in place of any the build machine has: proot's checks may see the build
    machine's). A package whose configuration fails under emulation is configured once more,
    as debootstrap does. Downloaded packages are kept in DEBS and offered to apt again on the
    next build."""
    archives = root / "var/cache/apt/archives"
    archives.mkdir(parents=True, exist_ok=True)
    for deb in debs.glob("*.deb"):
        shutil.copy(deb, archives)
    apt = ["apt-get", "-q", "-o", "APT::Sandbox::User=root", "-o",
           "Dpkg::Options::=--force-confold"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", PATH="/usr/sbin:/usr/bin:/sbin:/bin")
    log(f"apt-get install under {QEMU['arm64']}: {' '.join(packages)}")
    policy = root / "usr/sbin/policy-rc.d"
    own_policy = not policy.exists() and not policy.is_symlink()
    if own_policy:
        policy.write_text(NO_SERVICES)
        policy.chmod(0o755)
    divert_systemd_tools(root)
    try:
        with build_machines_dns(root):
            in_root(root, "arm64", *apt, "update", env=env)
            in_root(root, "arm64", *apt, "install", "-y", "--download-only",
                    "--no-install-recommends", *packages, env=env)
        try:
            in_root(root, "arm64", *apt, "install", "-y", "--no-install-recommends", *packages,
                    env=env)
        except BuildError:
            log("configuring the packages left unconfigured, once more")
            in_root(root, "arm64", "dpkg", "--configure", "-a", env=env)
        unconfigured = in_root(root, "arm64", "dpkg", "--audit", env=env, capture=True)
        if unconfigured.strip():
            raise BuildError("packages left unconfigured in the base's root: "
                             + " ".join(unconfigured.split())[:300])
    finally:
        if own_policy:
            policy.unlink(missing_ok=True)
    restore_systemd_tools(root, "arm64")
    for deb in archives.glob("*.deb"):
        if not (debs / deb.name).exists():
            shutil.copy(deb, debs)


#: /usr/sbin/policy-rc.d while packages are installed into a root: no service starts there
NO_SERVICES = "#!/bin/sh\n# build-image: no service starts while the image is made\nexit 101\n"


def from_base(image: Path, root: Path, packages: list[str], debs: Path, boot: Path) -> None:
    """A Raspberry Pi OS base's root with the kiosk's packages added, and its boot files."""
    parts = read_mbr(image)
    log(f"the root of {image.name} (debugfs rdump) and its boot files (mcopy)")
    extract_root(image, parts[1][1] * SECTOR, root)
    shutil.rmtree(root / "lost+found", ignore_errors=True)
    base_boot_files(image, parts[0][1] * SECTOR, boot)
    debs.mkdir(parents=True, exist_ok=True)
    install_base_packages(root, packages, debs)


def base_boot_files(image: Path, offset: int, dest: Path) -> None:
    """The base's boot partition's files (firmware, kernels, initramfs, device trees,
    overlays) but its config.txt and cmdline.txt, which are the image's own."""
    dest.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    run("mcopy", "-s", "-n", "-i", f"{image}@@{offset}", "::/*", dest, env=env)
    for name in ("config.txt", "cmdline.txt", "autoboot.txt"):
        (dest / name).unlink(missing_ok=True)


def read_mbr(image: Path) -> list[tuple[int, int, int]]:
    """The MBR's partitions in use: (type, first sector, sectors)."""
    with image.open("rb") as f:
        mbr = f.read(SECTOR)
    if len(mbr) < SECTOR or mbr[510:512] != b"\x55\xaa":
        raise BuildError(f"{image}: not a disk image (no partition table)")
    return [entry for entry in mbr_entries(mbr) if entry[0]]


def check_pi_base(image: Path) -> dict[str, object]:
    """A Raspberry Pi OS Lite arm64 image: a FAT boot partition, an ext4 root, arm64 programs."""
    if not image.is_file():
        raise BuildError(f"{image}: no such base image")
    size = image.stat().st_size
    parts = read_mbr(image)
    if len(parts) < 2 or parts[0][0] not in (0x0B, 0x0C, 0x0E) or parts[1][0] != 0x83:
        raise BuildError(f"{image}: not a Raspberry Pi OS image (expected a FAT boot and a "
                         "Linux root partition)")
    for _kind, start, count in parts:
        if (start + count) * SECTOR > size:
            raise BuildError(f"{image}: truncated ({size} bytes, its partitions need "
                             f"{(start + count) * SECTOR})")
    root_offset = parts[1][1] * SECTOR
    with tempfile.TemporaryDirectory() as tmp:
        elf = Path(tmp) / "dash"
        run("debugfs", "-R", f"dump -p /usr/bin/dash {elf}",
            f"{image}?offset={root_offset}", capture=True)
        header = elf.read_bytes()[:20] if elf.exists() else b""
    if header[:4] != b"\x7fELF":
        raise BuildError(f"{image}: its root partition has no /usr/bin/dash (not Raspberry Pi OS)")
    machine = ELF_MACHINES.get(struct.unpack("<H", header[18:20])[0], "unknown")
    if machine != "arm64":
        raise BuildError(f"{image}: built for {machine}, not arm64")
    boot_files = mtools_list(image, parts[0][1] * SECTOR)
    for needed in ("config.txt", "cmdline.txt", "start4.elf", "kernel8.img"):
        if needed not in boot_files:
            raise BuildError(f"{image}: the boot partition has no {needed}")
    return {"base": str(image), "base_sha256": sha256(image), "arch": machine}


def mtools_list(image: Path, offset: int) -> set[str]:
    out = run("mdir", "-b", "-i", f"{image}@@{offset}", "::/", capture=True)
    return {line.rsplit("/", 1)[-1].strip() for line in out.splitlines() if line.strip()}


# --- Debian's firmware and kernel -----------------------------------------------------------

def raspi_firmware(debs: Path, mirror: str, suite: str, work: Path) -> Path:
    """Debian's raspi-firmware package (non-free-firmware), downloaded once and kept.

    Fetched with apt (the signature checked with Debian's keyring), not installed in the root:
    its hooks write /boot/firmware of the machine it runs on, and the boot partition is made
    here instead (:func:`debian_boot_files`)."""
    found = sorted(debs.glob("raspi-firmware_*.deb"))
    if found:
        return found[-1]
    state = work / "apt-firmware"
    for folder in ("lists/partial", "archives/partial", "sources.list.d"):
        (state / folder).mkdir(parents=True)
    (state / "sources.list").write_text(
        "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
        f"{mirror} {suite} non-free-firmware\n")
    apt = ["apt-get", "-q", "-o", f"Dir::Etc::SourceList={state}/sources.list",
           "-o", f"Dir::Etc::SourceParts={state}/sources.list.d",
           "-o", f"Dir::State::Lists={state}/lists", "-o", f"Dir::Cache={state}",
           "-o", "APT::Architecture=arm64", "-o", "APT::Architectures=arm64",
           "-o", "Debug::NoLocking=1"]
    run(*apt, "update", capture=True)
    done = subprocess.run([*apt, "download", "raspi-firmware"], cwd=debs, capture_output=True,
                          text=True, check=False)
    found = sorted(debs.glob("raspi-firmware_*.deb"))
    if done.returncode != 0 or not found:
        raise BuildError("could not download Debian's raspi-firmware: "
                         + (done.stderr.strip().splitlines() or ["no package"])[-1])
    return found[-1]


def debian_boot_files(root: Path, firmware_deb: Path, dest: Path) -> tuple[str, str]:
    """The firmware of raspi-firmware, the root's kernel and initramfs and its Raspberry Pi
    device trees, as Debian's raspi-firmware hook puts them in /boot/firmware (vmlinuz-VERSION,
    initrd.img-VERSION named by config.txt). Returns the kernel's and the initramfs's names."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        run("dpkg-deb", "-x", firmware_deb, tmp)
        firmware = Path(tmp) / "usr/lib/raspi-firmware"
        if not (firmware / "start4.elf").is_file():
            raise BuildError(f"{firmware_deb.name} has no usr/lib/raspi-firmware/start4.elf")
        for item in sorted(firmware.iterdir()):
            shutil.copy(item, dest / item.name)
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise BuildError("the root has no kernel (/boot/vmlinuz-*)")
    kernel = kernels[-1]
    version = kernel.name.removeprefix("vmlinuz-")
    initrd = root / "boot" / f"initrd.img-{version}"
    if not initrd.is_file():
        raise BuildError(f"the root has no initramfs for its kernel ({initrd.name})")
    try:
        lacking = initramfs.missing(initrd)
    except initramfs.InitramfsError as error:
        raise BuildError(f"{initrd.name}: {error}") from error
    if lacking:  # the kernel would stop with "No working init found"
        raise BuildError(f"{initrd.name} cannot boot: it lacks {', '.join(lacking)}")
    trees = sorted((root / "usr/lib" / f"linux-image-{version}" / "broadcom").glob("bcm27*.dtb"))
    if not any(t.name.startswith("bcm2711-") for t in trees):
        raise BuildError(f"the kernel {version} has no Raspberry Pi 4 device tree (bcm2711)")
    for item in (kernel, initrd, *trees):
        shutil.copy(item, dest / item.name)
    return kernel.name, initrd.name


def config_txt(display: str, kernel: str | None = None, initramfs: str | None = None) -> str:
    """The firmware's config.txt of a boot slot. With a kernel named (Debian's), the firmware
    loads that one with its initramfs, as an upstream kernel; without (Raspberry Pi OS's), it
    picks kernel8.img or kernel_2712.img and the initramfs beside it."""
    if display not in DISPLAYS:
        raise BuildError(f"unknown display {display!r} (one of {', '.join(DISPLAYS)})")
    lines = ["# Onshi Kiosk: the Raspberry Pi firmware's settings for a boot slot (build-image).",
             "# An update writes the same files into the other slot: each slot's command line",
             "# names its own root, chosen by the partition this file was read from",
             "# (autoboot.txt's boot_partition: 2 is slot A, 3 slot B); cmdline.txt is A's.",
             "[boot_partition=2]", "cmdline=cmdline-A.txt",
             "[boot_partition=3]", "cmdline=cmdline-B.txt",
             "[all]",
             "arm_64bit=1"]
    if kernel:
        lines += [f"kernel={kernel}", f"initramfs {initramfs} followkernel", "upstream_kernel=1"]
    else:
        lines += ["auto_initramfs=1"]
    lines += ["# the serial console (console=serial0 on the kernel's command line)",
              "enable_uart=1",
              "# the SoC's watchdog, which systemd feeds (RuntimeWatchdogSec)",
              "dtparam=watchdog=on",
              "# the screen: KMS (the kiosk draws with SDL's KMSDRM), no rainbow splash",
              "dtoverlay=vc4-kms-v3d", "disable_splash=1",
              f"# the panel, in its native orientation ({display}): no rotation, no touch mapping",
              "display_auto_detect=0", DISPLAYS[display]]
    return "\n".join(lines) + "\n"


def write_boot_slot(files: Path, display: str, disk_id: str, kernel: str | None = None,
                    initramfs: str | None = None) -> None:
    """config.txt and both slots' command lines beside the firmware in FILES: the same files
    serve either slot, so an update bundle carries one boot image (provisioning/build-bundle).
    cmdline.txt is slot A's, for a firmware that would not know config.txt's filter."""
    (files / "config.txt").write_text(config_txt(display, kernel, initramfs))
    for slot in "AB":
        cmdline = (PI_BOOT / f"cmdline-{slot}.txt").read_text().replace("@DISKID@", disk_id)
        (files / f"cmdline-{slot}.txt").write_text(cmdline)
        if slot == "A":
            (files / "cmdline.txt").write_text(cmdline)


def autoboot_files(dest: Path) -> None:
    dest.mkdir(parents=True)
    shutil.copy(PI_BOOT / "autoboot.txt", dest / "autoboot.txt")


# --- the root's own files -------------------------------------------------------------------

def adjust_root(root: Path, disk_id: str) -> None:
    """The Pi's RAUC slots (system.conf) and its partitions in fstab: the data partition is 7;
    partition 1 (autoboot.txt, the enrolment bundle) is at /boot/autoboot, where the update
    backend reads it, and /boot/firmware points there for the enrolment's first boot."""
    conf = (PI_BOOT / "system.conf").read_text().replace("@DISKID@", disk_id)
    (root / "etc/rauc/system.conf").write_text(conf)
    fstab = root / "etc/fstab"
    text = fstab.read_text()
    moves = {f"PARTUUID={disk_id}-01  /boot/firmware ": f"PARTUUID={disk_id}-01  /boot/autoboot ",
             f"PARTUUID={disk_id}-04  /data ": f"PARTUUID={disk_id}-07  /data "}
    for old, new in moves.items():
        if old not in text:
            raise BuildError(f"etc/fstab of the image has no line '{old.strip()}'")
        text = text.replace(old, new)
    fstab.write_text(text)
    (root / "boot/autoboot").mkdir(parents=True, exist_ok=True)
    firmware = root / "boot/firmware"
    if firmware.is_dir() and not firmware.is_symlink():
        shutil.rmtree(firmware)
    firmware.unlink(missing_ok=True)
    firmware.symlink_to("autoboot")


def drop_emulator(root: Path, arch: str) -> None:
    (root / "usr/bin" / QEMU.get(arch, "none")).unlink(missing_ok=True)


# --- the disk -------------------------------------------------------------------------------

def layout(autoboot: int, boot: int, slot: int, data: int) -> list[tuple[int, int, int, str]]:
    """(number, first sector, sectors, type) of each partition, from each one's sectors."""
    parts = []
    start = GAP
    for number, size in ((1, autoboot), (2, boot), (3, boot)):
        parts.append((number, start, size, FAT))
        start += size
    extended = start
    for number, size in ((5, slot), (6, slot), (7, data)):
        start += GAP
        parts.append((number, start, size, LINUX))
        start += size
    parts.insert(3, (4, extended, start - extended, EXTENDED))
    return parts


def partition_table(disk_id: str, parts: list[tuple[int, int, int, str]]) -> str:
    """sfdisk's script of the layout (the logical partitions follow the extended one)."""
    lines = [f"label: dos\nlabel-id: {disk_id}\nunit: sectors"]
    lines += [f"{start},{size},{kind}" for _number, start, size, kind in parts]
    return "\n".join(lines) + "\n"


def assemble(out: Path, disk_id: str, slot_mib: int, autoboot: Path, boot: Path, root: Path,
             data: Path) -> list[tuple[int, int, int, str]]:
    """The Pi's disk: autoboot, boot A and root A written, boot B and root B left empty."""
    slot = slot_mib * MIB // SECTOR
    if root.stat().st_size // SECTOR > slot:
        raise BuildError(f"the root file system ({root.stat().st_size // MIB} MiB) does not "
                         f"fit its slot ({slot_mib} MiB)")
    parts = layout(autoboot.stat().st_size // SECTOR, boot.stat().st_size // SECTOR, slot,
                   data.stat().st_size // SECTOR)
    total = (parts[-1][1] + parts[-1][2] + GAP) * SECTOR
    with out.open("wb") as f:
        f.truncate(total)
    subprocess.run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(out)],
                   input=partition_table(disk_id, parts), text=True, check=True,
                   stdout=subprocess.DEVNULL)
    first = {number: start for number, start, _size, _kind in parts}
    with out.open("r+b") as f:
        for part, number in ((autoboot, 1), (boot, 2), (root, 5), (data, 7)):
            f.seek(first[number] * SECTOR)
            with part.open("rb") as src:
                shutil.copyfileobj(src, f, 4 * MIB)
        f.flush()
        os.fsync(f.fileno())
    return parts
