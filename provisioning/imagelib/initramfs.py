"""What an initramfs holds, read without unpacking it: the names in its cpio archives.

An initramfs is one or more "newc" cpio archives one after the other, each stored as it is or
compressed (Debian 12's initramfs-tools: zstd by default; gzip, xz as configured), the
uncompressed ones first (early microcode, firmware). The kernel runs its ``/init``, a shell
script: an initramfs without a shell boots to "No working init found". The build refuses one
(``missing``), and the arm64 image's test checks the image's (provisioning/image-test-arm64).
"""

from __future__ import annotations

import gzip
import lzma
import re
import shutil
import subprocess
from pathlib import Path

HEADER = 110
MAGIC = b"070701"
TRAILER = "TRAILER!!!"
NONZERO = re.compile(rb"[^\x00]")
#: what /init needs to run at all: itself and a shell (usr/bin/sh: /bin is a link to usr/bin
#: in a merged-/usr root; either name will do)
NEEDED = ("init", "scripts/local")
SHELLS = ("usr/bin/sh", "bin/sh")


class InitramfsError(Exception):
    """The file is not an initramfs this module can read."""


def decompress(data: bytes) -> bytes:
    if data[:4] == b"\x28\xb5\x2f\xfd":  # zstd: not in Python's standard library
        if shutil.which("zstd") is None:
            raise InitramfsError("the initramfs is zstd-compressed and zstd is not installed")
        done = subprocess.run(["zstd", "-dcq"], input=data, capture_output=True, check=False)
        if done.returncode != 0:
            raise InitramfsError(f"zstd: {done.stderr.decode(errors='replace').strip()}")
        return done.stdout
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:6] == b"\xfd7zXZ\x00":
        return lzma.decompress(data)
    raise InitramfsError(f"neither a cpio archive nor a known compression ({data[:6].hex()})")


def names(data: bytes) -> set[str]:
    """Every name in the initramfs ``data`` (without a leading "./" or "/")."""
    found: set[str] = set()
    at = 0
    while at < len(data):
        if data[at:at + 6] != MAGIC:
            nonzero = NONZERO.search(data, at)
            if nonzero is None:
                break  # the padding after the last archive
            if nonzero.start() > at:
                at = nonzero.start()  # the padding between archives
                continue
            data, at = decompress(data[at:]), 0  # the rest is one compressed stream
            continue
        header = data[at:at + HEADER]
        if len(header) < HEADER:
            raise InitramfsError(f"a cpio header cut short at byte {at}")
        try:
            size, name_size = int(header[54:62], 16), int(header[94:102], 16)
        except ValueError as error:
            raise InitramfsError(f"a malformed cpio header at byte {at}") from error
        name = data[at + HEADER:at + HEADER + name_size - 1].decode(errors="replace")
        at = at + HEADER + name_size
        at += -at % 4
        at += size + (-size % 4)
        if name == TRAILER:
            continue
        found.add(name.removeprefix("./").lstrip("/"))
    return found


def missing(path: Path) -> list[str]:
    """What the initramfs at ``path`` lacks of what its /init needs to run."""
    held = names(path.read_bytes())
    lacking = [name for name in NEEDED if name not in held]
    if not any(shell in held for shell in SHELLS):
        lacking.append("a shell (" + " or ".join(SHELLS) + ")")
    return lacking
