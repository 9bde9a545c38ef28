"""What the kiosk shows about its outbox: the LEDs, the heartbeat, ``kiosk uploader status``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


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

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["quarantine_files"] = list(self.quarantine_files)
        doc["fill"] = round(self.fill, 4)
        doc["alarms"] = list(self.alarms)
        return doc
