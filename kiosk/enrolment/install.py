"""Installing a bundle into the identity folder: all of it or nothing.

The files are written into a staging folder beside the target (same file system), checked
there (:func:`kiosk.enrolment.checks.check_files`), given their owners and modes, synced, and
the staging folder then takes the target's name in one ``rename``. A unit that loses power at
any moment has either its old identity or the new one, never half of each; a staging folder
such a cut leaves behind is removed by the next enrolment.

Owners and modes (``--owner USER --group GROUP``; the image uses ``onshi-kiosk`` for both)::

    DIR/                root:GROUP      0750
    kiosk.toml          root:GROUP      0640
    device.key.pem      USER:GROUP      0600   the only file the kiosk's user owns
    device.pem, server-ca.pem, outbox-key.json, bundle.json
                        root:GROUP      0644

Without ``--owner``/``--group`` the files keep the caller's user and group (tests, a
developer's machine); the modes are the same.

Re-enrolling (``again``): the old folder is swapped out in the same atomic step (Linux
``renameat2(RENAME_EXCHANGE)``) and kept beside it as ``DIR.replaced-YYYYmmddTHHMMSSZ``
(mode 0700), so a bundle issued by mistake can be undone; the maintainer revokes the old
certificate on the server and deletes the backup (hardware.md, "Re-enrolling a unit").
"""

from __future__ import annotations

import ctypes
import datetime as dt
import errno
import grp
import os
import pwd
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from contract.device_bundle import DEVICE_CERTIFICATE, DEVICE_KEY, KIOSK_CONFIG, MANIFEST
from kiosk.enrolment.checks import Bundle, CheckedBundle, check_files
from kiosk.errors import KioskError

#: Files whose presence means the folder holds an identity.
IDENTITY_FILES = (DEVICE_KEY, DEVICE_CERTIFICATE, KIOSK_CONFIG, MANIFEST)
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class EnrolmentError(KioskError):
    """Enrolling this unit did not happen; nothing was changed."""

    code = "enrolment"


class AlreadyEnrolled(EnrolmentError):
    """The identity folder holds an identity and re-enrolling was not asked for."""

    code = "enrolment.already"


class InstallFailed(EnrolmentError):
    """The identity folder could not be written (read-only, full, permissions...)."""

    code = "enrolment.install"


@dataclass(frozen=True)
class Ownership:
    """Who owns the installed files: the key's owner, and the group of everything."""

    key_owner: int = -1
    group: int = -1
    root: int = -1

    @classmethod
    def named(cls, owner: str | None, group: str | None) -> Ownership:
        try:
            uid = pwd.getpwnam(owner).pw_uid if owner else -1
        except KeyError:
            raise EnrolmentError(f"--owner {owner}: no such user") from None
        try:
            gid = grp.getgrnam(group).gr_gid if group else -1
        except KeyError:
            raise EnrolmentError(f"--group {group}: no such group") from None
        return cls(uid, gid, 0 if owner or group else -1)

    def apply(self, folder: Path) -> None:
        os.chmod(folder, 0o750)  # noqa: S103 - the kiosk's group reads it, nobody else
        os.chown(folder, self.root, self.group)
        for name in os.listdir(folder):
            path = folder / name
            if name == KIOSK_CONFIG:
                os.chmod(path, 0o640)
            os.chown(path, self.key_owner if name == DEVICE_KEY else self.root, self.group)


@dataclass(frozen=True)
class Installed:
    checked: CheckedBundle
    target: Path
    #: where the identity it replaced was kept (``again``), or None
    backup: Path | None


def holds_identity(folder: Path) -> bool:
    return any((folder / name).exists() for name in IDENTITY_FILES)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> None:
    """Swap two paths in one step (both exist, same file system)."""
    libc = ctypes.CDLL(None, use_errno=True)
    result = libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(b))


def _why(exc: OSError) -> str:
    if exc.errno == errno.EROFS:
        return "the file system is read-only"
    if exc.errno == errno.ENOSPC:
        return "the file system is full"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied (run as root to set owners)"
    return exc.strerror or str(exc)


def install(
    bundle: Bundle,
    target: Path,
    *,
    again: bool = False,
    ownership: Ownership | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> Installed:
    """Check ``bundle`` and make it the identity in ``target``; nothing changes on failure."""
    target = target.absolute()
    present = target.is_dir() and any(target.iterdir())
    if present and not again:
        if holds_identity(target):
            raise AlreadyEnrolled(
                f"{target} holds an identity already: re-enrolling is `kiosk enrol --again`"
            )
        raise EnrolmentError(f"{target} holds other files: enrol into an empty or new folder")
    if target.exists() and not target.is_dir():
        raise EnrolmentError(f"{target} is not a folder")
    parent = target.parent
    _remove_leftovers(target)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.enrol-", dir=parent))
    except OSError as exc:
        raise InstallFailed(f"cannot write beside {target}: {_why(exc)}") from None
    try:
        try:
            checked = check_files(bundle, staging, clock())
            (ownership or Ownership()).apply(staging)
            _fsync_dir(staging)
            backup = _swap_in(staging, target, present, clock())
            _fsync_dir(parent)
        except OSError as exc:
            raise InstallFailed(f"cannot install into {target}: {_why(exc)}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when the swap succeeded
    return Installed(checked, target, backup)


def _remove_leftovers(target: Path) -> None:
    """Staging folders an interrupted enrolment left beside ``target`` (a power cut, SIGKILL):
    they may hold a copy of a private key."""
    for leftover in target.parent.glob(f".{target.name}.enrol-*"):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)


def _swap_in(staging: Path, target: Path, present: bool, now: dt.datetime) -> Path | None:
    if not present:
        os.rename(staging, target)  # a missing or empty target: replaced in one step
        return None
    backup = target.with_name(f"{target.name}.replaced-{now:%Y%m%dT%H%M%SZ}")
    if backup.exists():
        raise InstallFailed(f"{backup} exists already: wait a second and enrol again")
    _exchange(staging, target)  # the new identity takes the name in one step
    os.chmod(staging, 0o700)  # now the old identity
    os.rename(staging, backup)
    return backup
