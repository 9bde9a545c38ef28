"""The heartbeat: one ``heartbeat`` record a minute with the kiosk's health.

What it holds (never personal data)::

    {"queue": {"records": N, "bytes": N, "level": "ok", "parked": N, "refused": N},
     "reader": "present" | "absent" | ... (whatever the reader-state callable says),
     "temperature_c": 48.3 | null, "uptime_s": 12345.6, "version": "0.1.0",
     "clock_synced": true | false | null, "alarms": [...]}

The sources are small functions with their file-system root passed in, so tests point them at
a folder: CPU temperature from ``/sys/class/thermal/thermal_zone*/temp`` (the ``cpu-thermal``
zone on a Raspberry Pi, else the first), uptime from ``/proc/uptime``, clock sync from
``timedatectl show -p NTPSynchronized --value`` where systemd answers, else from the kernel's
``adjtimex`` (synchronised when ``STA_UNSYNC`` is clear), else unknown (``null``).

``Heartbeat.run`` beats until its stop event is set; the composition root runs it on a thread
of the UI process, which knows the reader's state. A full or failing outbox does not stop it:
the refusal is counted by the outbox and the next beat tries again.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk import __version__
from kiosk.errors import OutboxError
from kiosk.outbox.queue import Outbox

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 60.0
_STA_UNSYNC = 0x0040


def cpu_temperature_c(sys_root: Path = Path("/sys")) -> float | None:
    """The CPU temperature in °C, or None where the kernel does not report one."""
    zones = sorted((sys_root / "class/thermal").glob("thermal_zone*"))
    preferred = []
    for zone in zones:
        try:
            kind = (zone / "type").read_text().strip()
        except OSError:
            kind = ""
        preferred.append((0 if "cpu" in kind else 1, zone))
    for _, zone in sorted(preferred):
        try:
            return round(int((zone / "temp").read_text().strip()) / 1000.0, 1)
        except (OSError, ValueError):
            continue
    return None


def uptime_s(proc_root: Path = Path("/proc")) -> float | None:
    try:
        return float((proc_root / "uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _timedatectl_synced() -> bool | None:
    try:
        out = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    answer = out.stdout.strip()
    if out.returncode != 0 or answer not in ("yes", "no"):
        return None
    return answer == "yes"


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h>: modes, then longs; the padding covers the tail
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_padding", ctypes.c_int * 11),
    ]


def _adjtimex_synced() -> bool | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        timex = _Timex()  # modes 0: only read
        state = libc.adjtimex(ctypes.byref(timex))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return not (timex.status & _STA_UNSYNC)


def clock_synced() -> bool | None:
    """Whether the system clock is synchronised (NTP), or None when nothing can tell."""
    answer = _timedatectl_synced()
    return answer if answer is not None else _adjtimex_synced()


class Heartbeat:
    """Builds and appends heartbeat records."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        reader_state: Callable[[], str] = lambda: "unknown",
        interval_s: float = DEFAULT_INTERVAL_S,
        sys_root: Path = Path("/sys"),
        proc_root: Path = Path("/proc"),
        clock_synced: Callable[[], bool | None] = clock_synced,
        extra: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.outbox = outbox
        self.interval_s = interval_s
        self._reader_state = reader_state
        self._sys_root = sys_root
        self._proc_root = proc_root
        self._clock_synced = clock_synced
        self._extra = extra

    def collect(self) -> dict[str, Any]:
        status = self.outbox.status()
        try:
            reader = str(self._reader_state())
        except Exception as exc:  # a broken probe must not stop the heartbeat
            reader = f"error:{type(exc).__name__}"
        payload: dict[str, Any] = {
            "queue": {
                "records": status.records,
                "bytes": status.bytes,
                "max_bytes": status.max_bytes,
                "level": status.level,
                "parked": status.parked,
                "refused": status.refused,
            },
            "reader": reader[:64],
            "temperature_c": cpu_temperature_c(self._sys_root),
            "uptime_s": uptime_s(self._proc_root),
            "version": __version__,
            "clock_synced": self._clock_synced(),
            "alarms": list(status.alarms),
        }
        if self._extra is not None:
            payload["extra"] = self._extra()
        return payload

    def beat(self) -> int | None:
        """Append one heartbeat; its sequence, or None when the outbox refused it."""
        try:
            return self.outbox.append("heartbeat", self.collect())
        except OutboxError as exc:
            log.warning("heartbeat not stored: %s", exc.code)
            return None

    def run(self, stop: threading.Event) -> None:
        """Beat now and every ``interval_s`` until ``stop`` is set."""
        while not stop.is_set():
            self.beat()
            stop.wait(self.interval_s)
