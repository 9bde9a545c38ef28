"""The heartbeat: the kiosk's health, every ``interval_s`` (a minute by default).

Each beat goes two ways:

- to the clinic server, ``POST /api/v1/heartbeat`` through the kiosk's one client
  (``ClinicClient.heartbeat``, device-signed), as the flat detail of
  :class:`contract.heartbeat.KioskHealth`. This is what the dashboard shows, and the one
  source of a kiosk's current health: it arrives at once, whatever the outbox's backlog, and
  its absence is what makes the dashboard call a kiosk silent. A beat the server does not
  take is not sent again (the next one is newer);
- into the outbox as a ``heartbeat`` record: the kiosk's health *history*, kept with its log
  and uploaded with it, so what happened while the server could not be reached arrives
  later. The dashboard does not read it.

What the outbox record holds (never personal data)::

    {"queue": {"records": N, "bytes": N, "level": "ok", "parked": N, "refused": N,
               "oldest_age_s": S | null},
     "reader": "present" | "absent" | ... (whatever the reader-state callable says),
     "temperature_c": 48.3 | null, "uptime_s": 12345.6, "version": "0.1.0",
     "clock_synced": true | false | null, "alarms": [...],
     "notice": "K-201" | null, "interval_s": 60.0}

The sources are small functions with their file-system root passed in, so tests point them at
a folder: CPU temperature from ``/sys/class/thermal/thermal_zone*/temp`` (the ``cpu-thermal``
zone on a Raspberry Pi, else the first), uptime from ``/proc/uptime``, clock sync from
``timedatectl show -p NTPSynchronized --value`` where systemd answers, else from the kernel's
``adjtimex`` (synchronised when ``STA_UNSYNC`` is clear), else unknown (``null``).

``Heartbeat.run`` beats until its stop event is set; the composition root runs it on a thread
of the UI process, which knows the reader's state and the last notice the screen showed. A
full or failing outbox does not stop it (the refusal is counted by the outbox and the next beat
tries again), nor does a server that cannot be reached.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from contract.heartbeat import DEFAULT_INTERVAL_S, KioskHealth
from kiosk import __version__
from kiosk.errors import KioskError, OutboxError
from kiosk.outbox.queue import Outbox

log = logging.getLogger(__name__)

#: The last numbered notice shown: its code (``K-201``) and wall-clock time, or None.
LastNotice = Callable[[], tuple[str, float] | None]


class HealthReporter(Protocol):
    """Sends a heartbeat to the server: the kiosk's ``ClinicClient``."""

    def heartbeat(self, status: str, detail: Mapping[str, Any] | None = None) -> None: ...


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
    """Builds heartbeats, appends them to the outbox and sends them to the server."""

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
        reporter: HealthReporter | None = None,
        update_slots: Callable[[], tuple[str | None, str | None]] = lambda: (None, None),
        last_notice: LastNotice = lambda: None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """``reporter`` sends each beat to the server (None: the outbox only);
        ``last_notice`` names the last numbered notice the screen showed; ``update_slots``
        the update slots' releases and the last try
        (:func:`kiosk.update.slot_status.published`)."""
        self.outbox = outbox
        self.interval_s = interval_s
        self._reader_state = reader_state
        self._sys_root = sys_root
        self._proc_root = proc_root
        self._clock_synced = clock_synced
        self._extra = extra
        self._reporter = reporter
        self._last_notice = last_notice
        self._update_slots = update_slots
        self._wall = wall
        #: whether the last beat reached the server (None: not sent yet, or no reporter)
        self.delivered: bool | None = None

    def health(self) -> tuple[KioskHealth, dict[str, Any]]:
        """The kiosk's health now, and the outbox's counters it was taken from."""
        queue: dict[str, Any] = {}
        alarms: tuple[str, ...] = ()
        try:
            status = self.outbox.status()
        except OutboxError as exc:  # an outbox that cannot be read is a fault to report
            alarms = (f"outbox.{exc.code}"[:40],)
        else:
            oldest_age_s = None
            if status.oldest_wall_ns is not None:
                oldest_age_s = round(max(0.0, self._wall() - status.oldest_wall_ns / 1e9), 1)
            queue = {
                "records": status.records,
                "bytes": status.bytes,
                "max_bytes": status.max_bytes,
                "level": status.level,
                "parked": status.parked,
                "refused": status.refused,
                "oldest_age_s": oldest_age_s,
            }
            alarms = tuple(status.alarms)
        try:
            reader = str(self._reader_state())
        except Exception as exc:  # a broken probe must not stop the heartbeat
            reader = f"error:{type(exc).__name__}"
        try:
            notice = self._last_notice()
        except Exception:  # pragma: no cover - the flow's own attribute
            notice = None
        try:
            slots, last_update = self._update_slots()
        except Exception:  # a broken source must not stop the heartbeat
            slots, last_update = None, None
        health = KioskHealth(
            interval_s=self.interval_s,
            reader=reader[:64],
            backlog_records=queue.get("records"),
            backlog_bytes=queue.get("bytes"),
            oldest_age_s=queue.get("oldest_age_s"),
            queue_level=queue.get("level"),
            alarms=alarms,
            clock_synced=self._clock_synced(),
            temperature_c=cpu_temperature_c(self._sys_root),
            uptime_s=uptime_s(self._proc_root),
            version=__version__,
            notice=notice[0] if notice else None,
            notice_at=round(notice[1], 3) if notice else None,
            slots=slots,
            last_update=last_update,
        )
        return health, queue

    def collect(self) -> dict[str, Any]:
        """The outbox record of one beat."""
        return self._record(*self.health())

    def _record(self, health: KioskHealth, queue: dict[str, Any]) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "queue": queue,
            "reader": health.reader,
            "temperature_c": health.temperature_c,
            "uptime_s": health.uptime_s,
            "version": health.version,
            "clock_synced": health.clock_synced,
            "alarms": list(health.alarms),
            "notice": health.notice,
            "interval_s": health.interval_s,
        }
        if self._extra is not None:
            payload["extra"] = self._extra()
        return payload

    def beat(self) -> int | None:
        """Append one heartbeat and send it; its sequence, or None when the outbox refused it."""
        health, queue = self.health()
        seq: int | None
        try:
            seq = self.outbox.append("heartbeat", self._record(health, queue))
        except OutboxError as exc:
            log.warning("heartbeat not stored: %s", exc.code)
            seq = None
        self.send(health)
        return seq

    def send(self, health: KioskHealth) -> bool:
        """Send ``health`` to the server; whether it took it (a failure is logged once)."""
        if self._reporter is None:
            return False
        try:
            self._reporter.heartbeat(health.status, health.to_detail())
        except KioskError as exc:
            if self.delivered is not False:
                log.warning("heartbeat not delivered to the clinic server: %s", exc.code)
            self.delivered = False
            return False
        if self.delivered is False:
            log.info("heartbeat delivered to the clinic server again")
        self.delivered = True
        return True

    def run(self, stop: threading.Event) -> None:
        """Beat now and every ``interval_s`` until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.beat()
            except Exception:  # a beat that failed unforeseen must not end the heartbeat
                log.exception("a heartbeat failed")
            stop.wait(self.interval_s)
