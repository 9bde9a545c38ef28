"""The system call filter a foreign root's programs run under (provisioning/imagelib/
syscall_filter.py), with the real proot: a shell's `[ -x FILE ]` and `ls -l FILE` must see the
root's FILE, not the build machine's."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.image.conftest import PROVISIONING

FILTER = PROVISIONING / "imagelib/syscall_filter.py"
pytestmark = pytest.mark.skipif(shutil.which("proot") is None, reason="make deps installs proot")


def small_root(tmp_path: Path) -> Path:
    """A root holding this machine's dash and ls with their libraries, and one script that the
    build machine does not have."""
    root = tmp_path / "root"
    for program in ("/bin/dash", "/bin/ls"):
        needed = subprocess.run(["ldd", program], capture_output=True, text=True, check=True)
        files = [program] + [w for w in needed.stdout.split() if w.startswith("/")]
        for name in files:
            target = root / Path(name).resolve().relative_to("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(name).resolve(), target)
            if Path(name).resolve() != Path(name):
                link = root / Path(name).relative_to("/")
                link.parent.mkdir(parents=True, exist_ok=True)
                if not link.exists():
                    link.symlink_to(Path(name).resolve())
    hook = root / "onshi-only-in-the-root/hook"
    hook.parent.mkdir()
    hook.write_text("#!/bin/sh\n")
    hook.chmod(0o755)
    return root


def in_root(root: Path, *prefix: str) -> str:
    script = (
        "f=/onshi-only-in-the-root/hook; [ -x $f ] && echo executable; [ -r $f ] && echo readable;"
        " ls -l $f > /dev/null 2>&1 && echo listed; true"
    )
    done = subprocess.run(
        [*prefix, "proot", "-r", str(root), "-b", "/dev", "-w", "/", "/bin/dash", "-c", script],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_without_the_filter_the_root_is_not_seen_by_every_call(tmp_path: Path) -> None:
    # what the filter is for: proot leaves faccessat2 untranslated, and the shell's test of
    # the root's file asks the build machine, which has no such file
    assert "executable" not in in_root(small_root(tmp_path)).split()


def test_with_the_filter_a_shell_and_ls_see_the_roots_file(tmp_path: Path) -> None:
    seen = in_root(small_root(tmp_path), sys.executable, str(FILTER))
    assert seen.split() == ["executable", "readable", "listed"]


def test_the_filter_refuses_only_faccessat2_and_statx() -> None:
    check = (
        "import ctypes, errno, os; libc = ctypes.CDLL(None, use_errno=True);"
        "r = libc.syscall(439, -100, b'/', 0, 0); e = ctypes.get_errno();"
        "print(r, errno.errorcode[e], os.access('/', os.X_OK), os.stat('/').st_ino > 0)"
    )
    done = subprocess.run(
        [sys.executable, str(FILTER), sys.executable, "-c", check],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split() == ["-1", "ENOSYS", "True", "True"]
