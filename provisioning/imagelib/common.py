"""What build-image and its modules share: the one-line error, the log, running a program."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

MIB = 1024 * 1024
SECTOR = 512


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
