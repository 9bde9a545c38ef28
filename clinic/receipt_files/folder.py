"""Putting a result file into the receipt software's folder, whole or not at all.

The bytes go to a temporary name in the same folder (``.<name>.<random>.part``: not matched by
``OQSsiquc01res_*.xml``, so a poller never reads half a file), are flushed to the disk
(``fsync``), renamed into place, and the folder itself is flushed so the rename survives a
power cut. Writing the same name again replaces the file with the same bytes: a retry after a
crash between the rename and the database never leaves two files for one check.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path

from clinic.errors import ClinicError


class FolderWriteError(ClinicError):
    """A result file could not be written; ``reason`` says why in words staff can act on."""

    def __init__(self, folder: Path, reason: str, code: str) -> None:
        super().__init__(f"{folder}: {reason}")
        self.folder = folder
        self.reason = reason
        #: missing, not_a_folder, read_only, full, denied, io
        self.code = code


_REASONS = {
    errno.ENOENT: ("missing", "the folder does not exist (is the share mounted?)"),
    errno.ENOTDIR: ("not_a_folder", "the path is not a folder"),
    errno.EROFS: ("read_only", "the folder is on a read-only file system"),
    errno.ENOSPC: ("full", "the disk is full"),
    errno.EDQUOT: ("full", "the disk quota is used up"),
    errno.EACCES: ("denied", "the server may not write there (permissions)"),
    errno.EPERM: ("denied", "the server may not write there (permissions)"),
}


def _failure(folder: Path, exc: OSError) -> FolderWriteError:
    code, reason = _REASONS.get(exc.errno or 0, ("io", f"write failed: {exc.strerror or exc}"))
    return FolderWriteError(folder, reason, code)


def write_atomically(folder: Path, name: str, content: bytes) -> Path:
    """Write ``folder/name`` through a temporary file, fsync and rename; raise
    ``FolderWriteError`` (nothing left behind) when the folder cannot take it."""
    if not folder.is_dir():
        code = "not_a_folder" if folder.exists() else "missing"
        raise FolderWriteError(
            folder, _REASONS[errno.ENOTDIR if folder.exists() else errno.ENOENT][1], code
        )
    target = folder / name
    part = folder / f".{name}.{secrets.token_hex(4)}.part"
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(part, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            part.unlink()
        raise _failure(folder, exc) from exc
    try:
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:  # some network shares cannot fsync a folder: the file is there
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise _failure(folder, exc) from exc
    return target
