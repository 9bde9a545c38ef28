"""What build-image, build-bundle, the image tests and their modules share: the one-line error,
the log, running a program, reading a partition table and an ELF header, loading a script."""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType

MIB = 1024 * 1024
SECTOR = 512
#: ELF e_machine values of the architectures a unit may have
ELF_MACHINES = {0xB7: "arm64", 0x3E: "amd64", 0x28: "armhf"}
#: MBR partition types of an extended partition (the Raspberry Pi layout's 4)
EXTENDED_TYPES = (0x05, 0x0F, 0x85)


def mbr_entries(sector: bytes) -> list[tuple[int, int, int]]:
    """The four entries of an MBR (or an extended partition's EBR): (type, first sector,
    sectors); an unused one is (0, 0, 0)."""
    entries = []
    for i in range(4):
        entry = sector[446 + 16 * i: 446 + 16 * (i + 1)]
        entries.append((entry[4], *struct.unpack("<II", entry[8:16])))
    return entries


class BuildError(Exception):
    """A build that cannot go on: one line naming the problem."""


def log(message: str) -> None:
    print(f"build-image: {message}", file=sys.stderr, flush=True)


def run(*argv: str | Path, env: dict[str, str] | None = None, capture: bool = False) -> str:
    args = [str(a) for a in argv]
    try:
        done = subprocess.run(args, env=env, check=False, text=True,
                              stdout=subprocess.PIPE if capture else None,
                              stderr=subprocess.PIPE if capture else None)
    except FileNotFoundError as error:
        raise BuildError(f"{args[0]} is not installed (make image installs it)") from error
    if done.returncode != 0:
        detail = (done.stderr or "").strip().splitlines()[-1:] if capture else []
        raise BuildError(f"{' '.join(args[:3])} failed ({done.returncode})"
                         + (f": {detail[0]}" if detail else ""))
    return done.stdout if capture else ""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            digest.update(block)
    return digest.hexdigest()


def load_script(name: str) -> ModuleType:
    """A script of provisioning/ (no .py suffix) as a module: build-image's steps, image-test's
    guest and clinic server for the other image tests."""
    path = Path(__file__).resolve().parent.parent / name
    loader = importlib.machinery.SourceFileLoader(name.replace("-", "_"), str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module
