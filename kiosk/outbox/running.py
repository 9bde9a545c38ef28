"""Whether an uploader runs: the lock file it holds while it runs.

``kiosk uploader run`` takes an exclusive ``flock`` on ``OUTBOX.uploader.lock`` next to the
outbox file and writes its pid into it; the kernel drops the lock when the process ends,
however it ends, so a stale file never looks like a running uploader. A second uploader on the
same outbox is refused. ``kiosk uploader status`` and ``kiosk doctor`` test the lock without
taking it for longer than the test.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from contract.errors import ConfigError


def lock_path(outbox_path: Path) -> Path:
    return outbox_path.with_name(outbox_path.name + ".uploader.lock")


@contextlib.contextmanager
def hold_uploader_lock(outbox_path: Path) -> Iterator[None]:
    """Hold the uploader lock of ``outbox_path`` while the block runs."""
    path = lock_path(outbox_path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot open the uploader's lock {path}: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = uploader_pid(outbox_path)
            raise ConfigError(
                f"an uploader already runs on {outbox_path} (pid {pid or '?'})"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def uploader_running(outbox_path: Path) -> bool:
    """Whether a process holds the uploader lock of ``outbox_path`` now."""
    try:
        fd = os.open(lock_path(outbox_path), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def uploader_pid(outbox_path: Path) -> int | None:
    """The pid the running uploader wrote into its lock, or None."""
    if not uploader_running(outbox_path):
        return None
    try:
        text = lock_path(outbox_path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
