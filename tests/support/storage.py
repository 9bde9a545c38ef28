"""File systems that run out of space or fail, for the outbox's disk tests (root only).

What they need is part of the test machine (provisioning/debian-packages.txt, run as root as
``make test`` is): where something is missing the test fails and says what and how to get it;
it never skips.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_NOT_FOUND = 127


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return subprocess.CompletedProcess(cmd, _NOT_FOUND, "", f"{cmd[0]}: command not found")


def _missing(what: str, result: subprocess.CompletedProcess[str], how: str) -> None:
    said = (result.stderr or result.stdout).strip() or f"exit status {result.returncode}"
    if result.returncode == _NOT_FOUND:
        how = "install it: provisioning/debian-packages.txt lists its package (`make deps`)"
    pytest.fail(f"{what} ({' '.join(result.args)}: {said}): {how}", pytrace=False)


_AS_ROOT = (
    "the outbox's disk tests mount small file systems and must run as root with mount rights"
    f" (running as uid {os.geteuid()}), as `make test` does on the provisioned machine"
)


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small tmpfs at ``path``; fails the test, saying why, where it cannot be mounted."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path))
    if mounted.returncode != 0:
        _missing("cannot mount a tmpfs", mounted, _AS_ROOT)
    try:
        yield path
    finally:
        _run("umount", "-l", str(path))


@contextlib.contextmanager
def ext4_that_can_fail(
    path: Path, image: Path, *, fresh: bool = True
) -> Iterator[Callable[[], None]]:
    """A small ext4 on a loop device mounted ``errors=remount-ro`` at ``path``.

    The callable makes the kernel report a file-system error (``trigger_fs_error``): ext4 then
    turns read-only under the open files, as an SD card going bad does. Fails the test, saying
    what is missing, where the image cannot be made or mounted.
    """
    path.mkdir(parents=True, exist_ok=True)
    if fresh:
        with open(image, "wb") as f:
            f.truncate(16 * 1024 * 1024)
        made = _run("mkfs.ext4", "-q", "-F", str(image))
        if made.returncode != 0:
            _missing(
                "cannot make an ext4 image",
                made,
                "install e2fsprogs (provisioning/debian-packages.txt; `make deps`)",
            )
    mounted = _run("mount", "-o", "loop,errors=remount-ro", str(image), str(path))
    if mounted.returncode != 0:
        _missing(
            "cannot mount an ext4 image on a loop device",
            mounted,
            _AS_ROOT + "; loop devices must exist (`modprobe loop`; in a container, pass"
            " /dev/loop-control and the /dev/loop* devices through)",
        )
    try:
        source = subprocess.run(
            ["findmnt", "-n", "-o", "SOURCE", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        trigger = Path("/sys/fs/ext4") / Path(source).name / "trigger_fs_error"
        if not trigger.exists():
            pytest.fail(
                f"this kernel's ext4 offers no {trigger}: the read-only test needs a kernel"
                " with ext4 sysfs error injection (Debian 12's 6.1 kernel has it)",
                pytrace=False,
            )

        def fail() -> None:
            trigger.write_text("1")

        yield fail
    finally:
        _run("umount", str(path))
