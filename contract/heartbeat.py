"""The kiosk's heartbeat as both sides read it: what it reports, and what counts as a fault.

Every ``interval_s`` the kiosk posts its health to ``POST /api/v1/heartbeat`` (device-signed
like every request): ``{"status": "ok" | "degraded" | "error", "detail": {...}}`` with the
flat ``detail`` :meth:`KioskHealth.to_detail` makes (scalars only, no personal data)::

    interval_s        seconds between heartbeats (the server calls a kiosk silent after three)
    reader            present | card | absent | pcscd_gone | unknown | error:...
    backlog_records   records waiting in the outbox (null: the outbox could not be read)
    backlog_bytes     their size
    oldest_age_s      age of the oldest waiting record, seconds (null: none waiting)
    queue_level       ok | warn | full (the outbox's fill level)
    alarms            the outbox's alarm codes, space-separated ("" when none)
    clock_synced      true | false | null (nothing could tell)
    temperature_c     CPU temperature, null where there is no sensor
    uptime_s          the system's uptime
    version           the kiosk software's version
    notice            the last numbered notice the screen showed, e.g. "K-201" (null: none yet)
    notice_at         when it was shown, wall-clock seconds
    slots             the update slots and their releases, e.g. "A 0.1.0 (build 17) committed,
                      booted · B 0.1.1 (build 18)" (null: a unit without A/B slots)
    last_update       the last try of a new slot: "B 0.1.1 (build 18) rolled_back: kiosk doctor:
                      display: no screen" (null: none yet)

:meth:`KioskHealth.faults` is the one rule both sides apply: the reader missing, the clock
known to be unsynchronised, or an outbox alarm. The kiosk derives ``status`` from it; the
server flags a kiosk that reports a fault (or a status other than ``ok``) until it is well
again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Status = Literal["ok", "degraded", "error"]
Scalar = str | int | float | bool | None

#: The interval a kiosk beats at unless configured otherwise.
DEFAULT_INTERVAL_S = 60.0
#: The range of intervals a kiosk may report (the server reads others as these bounds).
MIN_INTERVAL_S = 1.0
MAX_INTERVAL_S = 3600.0
#: Heartbeats missed before a kiosk counts as silent.
SILENT_AFTER_BEATS = 3

#: Reader states that are not a fault (``card``: a card lies on a working reader).
READER_OK = frozenset({"present", "card", "unknown"})


@dataclass(frozen=True)
class KioskHealth:
    interval_s: float = DEFAULT_INTERVAL_S
    reader: str = "unknown"
    backlog_records: int | None = None
    backlog_bytes: int | None = None
    oldest_age_s: float | None = None
    queue_level: str | None = None
    alarms: tuple[str, ...] = ()
    clock_synced: bool | None = None
    temperature_c: float | None = None
    uptime_s: float | None = None
    version: str = ""
    notice: str | None = None
    notice_at: float | None = None
    slots: str | None = None
    last_update: str | None = None

    @property
    def update_rolled_back(self) -> bool:
        return " rolled_back" in (self.last_update or "")

    def faults(self) -> tuple[str, ...]:
        """Stable codes of what is wrong with the kiosk; empty when it is well."""
        found = []
        if self.reader not in READER_OK:
            found.append(f"reader.{self.reader.split(':')[0]}")
        if self.clock_synced is False:
            found.append("clock.unsynchronised")
        found += list(self.alarms)
        return tuple(found)

    @property
    def status(self) -> Status:
        """``error``: no card can be read; ``degraded``: another fault; ``ok``."""
        faults = self.faults()
        if any(f.startswith("reader.") for f in faults):
            return "error"
        return "degraded" if faults else "ok"

    def to_detail(self) -> dict[str, Scalar]:
        return {
            "interval_s": self.interval_s,
            "reader": self.reader[:64],
            "backlog_records": self.backlog_records,
            "backlog_bytes": self.backlog_bytes,
            "oldest_age_s": self.oldest_age_s,
            "queue_level": self.queue_level,
            "alarms": " ".join(a[:40] for a in self.alarms[:8]),
            "clock_synced": self.clock_synced,
            "temperature_c": self.temperature_c,
            "uptime_s": self.uptime_s,
            "version": self.version[:40],
            "notice": self.notice,
            "notice_at": self.notice_at,
            "slots": None if self.slots is None else self.slots[:200],
            "last_update": None if self.last_update is None else self.last_update[:300],
        }

    @classmethod
    def from_detail(cls, detail: Mapping[str, object]) -> KioskHealth:
        """What a heartbeat's ``detail`` says; missing or ill-typed values are unknown."""

        def number(key: str) -> float | None:
            value = detail.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            return float(value)

        def whole(key: str) -> int | None:
            value = number(key)
            return None if value is None else int(value)

        def text(key: str) -> str | None:
            value = detail.get(key)
            return value if isinstance(value, str) else None

        interval = number("interval_s")
        synced = detail.get("clock_synced")
        return cls(
            interval_s=(
                DEFAULT_INTERVAL_S
                if interval is None or interval <= 0
                else max(MIN_INTERVAL_S, min(interval, MAX_INTERVAL_S))
            ),
            reader=text("reader") or "unknown",
            backlog_records=whole("backlog_records"),
            backlog_bytes=whole("backlog_bytes"),
            oldest_age_s=number("oldest_age_s"),
            queue_level=text("queue_level"),
            alarms=tuple((text("alarms") or "").split()),
            clock_synced=synced if isinstance(synced, bool) else None,
            temperature_c=number("temperature_c"),
            uptime_s=number("uptime_s"),
            version=text("version") or "",
            notice=text("notice"),
            notice_at=number("notice_at"),
            slots=text("slots"),
            last_update=text("last_update"),
        )
