"""The clocks a record is stamped with, and noticing a wall clock that went back.

Each record holds the wall-clock and the monotonic time of its append, with the kernel's boot
id. When the wall clock went back (by more than two seconds against the monotonic clock in the
same boot, or against the last record across a reboot) the outbox appends an
``outbox.clock_back`` record before the caller's, counts it in the status, and goes on: order
comes from the sequence (:mod:`kiosk.outbox.sequence`), never from the wall clock.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

WallClock = Callable[[], int]
MonotonicClock = Callable[[], int]

#: How far the wall clock may fall behind the monotonic clock before it counts as set back.
CLOCK_BACK_TOLERANCE_NS = 2_000_000_000


def read_boot_id(proc: Path = Path("/proc")) -> str:
    """The kernel's boot id, or a random one when /proc does not tell (not Linux)."""
    try:
        return (proc / "sys/kernel/random/boot_id").read_text().strip() or secrets.token_hex(16)
    except OSError:
        return secrets.token_hex(16)


def wall_clock_set_back(
    *,
    last_wall_ns: int,
    last_mono_ns: int,
    last_boot: object,
    wall_ns: int,
    mono_ns: int,
    boot_id: str,
) -> int:
    """By how many nanoseconds the wall clock went back since the last stamp; 0 if it did not.

    In the same boot the monotonic clock says where the wall clock should be; across a reboot
    only the last wall time is known. Drift within the tolerance does not count.
    """
    if not last_wall_ns:
        return 0
    if last_boot == boot_id:
        back = last_wall_ns + (mono_ns - last_mono_ns) - wall_ns
    else:
        back = last_wall_ns - wall_ns
    return back if back > CLOCK_BACK_TOLERANCE_NS else 0
