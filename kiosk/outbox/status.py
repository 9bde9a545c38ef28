"""What the kiosk shows about its outbox: the LEDs, the heartbeat, ``kiosk uploader status``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

#: A queued record older than this (seconds) raises ``outbox.stale``: the uploader sends
#: within seconds when the server answers.
STALE_AFTER_S = 900.0


@dataclass(frozen=True)
class OutboxStatus:
    """The outbox's counters, level and alarms at one moment."""

    device_id: str
    records: int
    bytes: int
    max_bytes: int
    warn_fraction: float
    level: str
    parked: int
    refused: int
    clock_back: int
    quarantined: int
    quarantine_files: tuple[str, ...]
    last_seq: int
    server_high_water: int
    oldest_wall_ns: int | None
    #: when the server last acknowledged a batch (kept in the outbox file), or None
    last_upload_wall_ns: int | None = None
    #: the uploader's last error code and when, or None
    last_error: str | None = None
    last_error_wall_ns: int | None = None

    @property
    def fill(self) -> float:
        return self.bytes / self.max_bytes

    @property
    def alarms(self) -> tuple[str, ...]:
        """Stable codes of everything a person should look at; empty when all is well."""
        found = []
        if self.level != "ok":
            found.append(f"outbox.{self.level}")
        if self.parked:
            found.append("outbox.parked")
        if self.clock_back:
            found.append("outbox.clock_back")
        if self.quarantine_files:
            found.append("outbox.quarantined")
        return tuple(found)

    @property
    def failing(self) -> bool:
        """The uploader's last attempt failed (its last error is newer than its last success)."""
        if self.last_error_wall_ns is None:
            return False
        last_ok = self.last_upload_wall_ns
        return last_ok is None or self.last_error_wall_ns > last_ok

    def oldest_age_s(self, now_ns: int) -> float | None:
        """Seconds since the oldest queued record was written, or None when none is queued."""
        if self.oldest_wall_ns is None or not self.records:
            return None
        return max(0.0, (now_ns - self.oldest_wall_ns) / 1e9)

    def backlog_alarms(
        self, *, uploader_running: bool, now_ns: int, stale_after_s: float = STALE_AFTER_S
    ) -> tuple[str, ...]:
        """Alarms about the backlog, which only someone who knows whether an uploader runs
        can raise: records queued with no uploader, a record older than ``stale_after_s``,
        records queued while the uploader's last attempt failed."""
        found = []
        if self.records and not uploader_running:
            found.append("uploader.not_running")
        age = self.oldest_age_s(now_ns)
        if age is not None and age > stale_after_s:
            found.append("outbox.stale")
        if self.records and self.failing:
            found.append("uploader.failing")
        return tuple(found)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["quarantine_files"] = list(self.quarantine_files)
        doc["fill"] = round(self.fill, 4)
        doc["alarms"] = list(self.alarms)
        return doc
