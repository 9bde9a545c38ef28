"""Small disk images made here, as the builder and the enrolment script read them."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import shutil
import struct
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

PROVISIONING = Path(__file__).resolve().parents[2] / "provisioning"
SECTOR = 512
MIB = 1024 * 1024


def load_script(name: str) -> ModuleType:
    """A script of provisioning/ as a module (its file has no .py suffix)."""
    module_name = name.replace("-", "_")
    loader = importlib.machinery.SourceFileLoader(module_name, str(PROVISIONING / name))
    spec = importlib.util.spec_from_loader(module_name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def load_builder() -> ModuleType:
    """provisioning/build-image as a module."""
    return load_script("build-image")


@pytest.fixture(scope="session")
def builder() -> ModuleType:
    return load_builder()


def mbr(parts: list[tuple[int, int, int]]) -> bytes:
    """A DOS partition table: (type, first sector, sectors) for each partition."""
    table = bytearray(SECTOR)
    for i, (kind, start, count) in enumerate(parts):
        entry = 446 + 16 * i
        table[entry + 4] = kind
        table[entry + 8 : entry + 16] = struct.pack("<II", start, count)
    table[510:512] = b"\x55\xaa"
    return bytes(table)


def fat(path: Path, mib: int, files: dict[str, bytes]) -> None:
    with path.open("wb") as f:
        f.truncate(mib * MIB)
    subprocess.run(["mkfs.vfat", "-F", "32", str(path)], check=True, capture_output=True)
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    for name, content in files.items():
        src = path.parent / f"fat-{name}"
        src.write_bytes(content)
        subprocess.run(["mcopy", "-i", str(path), str(src), f"::/{name}"], check=True, env=env)


def ext4(path: Path, mib: int, files: dict[str, bytes]) -> None:
    tree = path.parent / f"{path.name}-tree"
    for name, content in files.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(content)
    tree.mkdir(exist_ok=True)
    with path.open("wb") as f:
        f.truncate(mib * MIB)
    subprocess.run(["mke2fs", "-q", "-t", "ext4", "-d", str(tree), str(path)], check=True)
    shutil.rmtree(tree)


def disk(path: Path, partitions: list[tuple[int, Path]]) -> Path:
    """A disk image of these partition files, the first at 1 MiB."""
    start = 2048
    entries = []
    with path.open("wb") as f:
        for kind, part in partitions:
            count = part.stat().st_size // SECTOR
            entries.append((kind, start, count))
            f.seek(start * SECTOR)
            f.write(part.read_bytes())
            start += count
        f.seek(0)
        f.write(mbr(entries))
    return path


def elf_header(machine: int) -> bytes:
    """The first bytes of a 64-bit little-endian ELF executable for this machine."""
    return b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HH", 2, machine) + bytes(44)


PI_BOOT_FILES = {name: b"x" for name in ("config.txt", "cmdline.txt", "start4.elf", "kernel8.img")}


@pytest.fixture
def pi_image(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Make a Raspberry Pi OS-shaped image: boot files, and a dash for a given machine."""

    def make(machine: int = 0xB7, boot_files: dict[str, bytes] = PI_BOOT_FILES) -> Path:
        boot, root = tmp_path / "boot.vfat", tmp_path / "root.ext4"
        fat(boot, 40, boot_files)
        ext4(root, 8, {"usr/bin/dash": elf_header(machine)})
        return disk(tmp_path / "raspios.img", [(0x0C, boot), (0x83, root)])

    return make


def cpio(names: list[str], content: bytes = b"#!/bin/sh\n") -> bytes:
    """A "newc" cpio archive, as an initramfs is made of: each name a file holding
    ``content``, then the trailer."""
    out = bytearray()
    for ino, name in enumerate([*names, "TRAILER!!!"], start=1):
        data = b"" if name == "TRAILER!!!" else content
        encoded = name.encode() + b"\x00"
        fields = [ino, 0o100755, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0]
        out += b"070701" + b"".join(b"%08X" % field for field in fields) + encoded
        out += bytes(-len(out) % 4) + data + bytes(-len(data) % 4)
    return bytes(out + bytes(-len(out) % 512))
