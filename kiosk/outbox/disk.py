"""The disk under the outbox: its failures as the outbox's own errors, and durable writes.

Every sqlite3 or OS error that reaches the outbox goes through :func:`storage_error`, which
decides what the kiosk should say: a damaged file (``OutboxCorrupt``), or the disk refusing
(``StorageUnavailable`` with ``reason`` ``disk_full``, ``read_only``, ``busy`` or ``io``).
A read-only or nearly full file system is recognised even when SQLite reports a plain I/O
error, by asking the file system itself.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from kiosk.errors import OutboxCorrupt, OutboxError, StorageUnavailable

#: Below this many free bytes an unexplained write failure counts as a full disk.
NEARLY_FULL_BYTES = 64 * 1024


def storage_error(exc: BaseException, directory: Path) -> OutboxError:
    """An sqlite3 or OS error as the outbox's own, deciding disk-full and read-only."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    err = getattr(exc, "errno", None)
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return OutboxCorrupt(f"the outbox database is damaged ({name})")
    if name == "SQLITE_FULL" or err in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return StorageUnavailable("the disk under the outbox is full", "disk_full")
    if name.startswith("SQLITE_READONLY") or err == errno.EROFS or _read_only(directory):
        return StorageUnavailable("the file system under the outbox is read-only", "read_only")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StorageUnavailable("the outbox stayed locked past the busy timeout", "busy")
    if _nearly_full(directory):
        return StorageUnavailable("the disk under the outbox is full", "disk_full")
    return StorageUnavailable(f"the outbox storage failed ({name or type(exc).__name__})", "io")


def _read_only(directory: Path) -> bool:
    """Whether the file system refuses writes (mounted so, or turned so after an error)."""
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return True
        probe = directory / f".outbox-probe-{os.getpid()}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        return exc.errno == errno.EROFS
    os.close(fd)
    with contextlib.suppress(OSError):
        probe.unlink()
    return False


def _nearly_full(directory: Path) -> bool:
    try:
        st = os.statvfs(directory)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < NEARLY_FULL_BYTES


def fsync_dir(directory: Path) -> None:
    """Make the entries of ``directory`` (a rename, a new file) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically: written and fsynced aside, then renamed."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)
