"""The clock, the data partition's free space and the root file system."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from contract.self_check import Finding, failed, ok, warning

MIB = 1024 * 1024


def check_clock(synced: Callable[[], bool | None]) -> Finding:
    """``synced`` is the heartbeat's source (:func:`kiosk.outbox.heartbeat.clock_synced`)."""
    name = "clock"
    answer = synced()
    if answer is True:
        return ok(name, "synchronised (NTP)")
    advice = (
        "the server refuses requests signed with a clock far off and certificates look "
        "not yet valid or expired: check the network and `timedatectl timesync-status` "
        "(systemd-timesyncd or chrony)"
    )
    if answer is False:
        return failed(name, "not synchronised", advice)
    return warning(name, "nothing tells whether the clock is synchronised", advice)


def check_disk(
    path: Path,
    *,
    needed_bytes: int,
    statvfs: Callable[[Path], os.statvfs_result] = os.statvfs,
) -> Finding:
    """Free space on the file system holding ``path`` (the outbox's folder: the data
    partition). Failed below ``needed_bytes`` (the outbox's bound), warning below 10 %."""
    name = "disk"
    try:
        stat = statvfs(path)
    except OSError as exc:
        return failed(
            name,
            f"cannot look at {path} ({exc.strerror or exc})",
            "is the data partition mounted? create the outbox's folder",
        )
    free = stat.f_bavail * stat.f_frsize
    total = stat.f_blocks * stat.f_frsize
    share = free / total if total else 0.0
    detail = f"{free // MIB} MiB free of {total // MIB} MiB ({share:.0%}) at {path}"
    advice = (
        "free space on the data partition: old logs (journalctl --vacuum-size), quarantined "
        "outbox files already sent, anything not the kiosk's"
    )
    if free < needed_bytes:
        return failed(name, detail + f"; the outbox may need {needed_bytes // MIB} MiB", advice)
    if share < 0.10:
        return warning(name, detail, advice)
    return ok(name, detail)


def root_mount_options(mounts: Path = Path("/proc/self/mounts")) -> list[str] | None:
    """The options of the last mount on ``/`` (the one in force), or None."""
    found = None
    try:
        lines = mounts.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) >= 4 and fields[1] == "/":
            found = fields[3].split(",")
    return found


def check_root_read_only(mounts: Path = Path("/proc/self/mounts")) -> Finding:
    name = "root fs"
    options = root_mount_options(mounts)
    if options is None:
        return warning(name, f"no mount of / in {mounts}", "check /proc is mounted")
    if "ro" in options:
        return ok(name, "read-only")
    return warning(
        name,
        "writable",
        "expected on a development machine; on a kiosk enable the overlay file system "
        "(raspi-config: Performance, Overlay File System) so a power cut cannot damage it",
    )
