"""The simulated national system: the default connector, and the data it answers from.

``SimulatedNationalSystem`` answers from the insured-person records that ``kiosk sim
population`` writes (``insured.jsonl``), loaded into the clinic database with
``clinic-server national load``, with configurable latency and outages (``OutagePlan``) for
tests and demos. It implements ``clinic.national.interface.NationalConnector``.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clinic.errors import NationalUnavailable
from clinic.national.interface import NationalAnswer
from clinic.storage import Database


@dataclass
class OutagePlan:
    """Latency and failures the simulated system adds (for tests and demos)."""

    latency_s: float = 0.0
    jitter_s: float = 0.0
    #: every lookup fails while True
    down: bool = False
    #: the share of lookups that fail at random (0..1)
    failure_rate: float = 0.0
    rng: random.Random = field(default_factory=random.Random)


class SimulatedNationalSystem:
    """The national system as the population generator describes it, kept in the database."""

    def __init__(
        self,
        db: Database,
        plan: OutagePlan | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._db = db
        self.plan = plan or OutagePlan()
        self._sleep = sleep
        self._lock = threading.Lock()

    @property
    def blocking(self) -> bool:
        """Only with simulated latency, or a database across the network."""
        plan = self.plan
        return plan.latency_s > 0 or plan.jitter_s > 0 or self._db.backend != "sqlite"

    def lookup(self, issuer: str, serial: int) -> NationalAnswer:
        plan = self.plan
        delay = plan.latency_s
        if plan.jitter_s:
            with self._lock:
                delay += plan.rng.uniform(0, plan.jitter_s)
        if delay > 0:
            self._sleep(delay)
        if plan.down:
            raise NationalUnavailable("the simulated national system is down")
        if plan.failure_rate > 0:
            with self._lock:
                failed = plan.rng.random() < plan.failure_rate
            if failed:
                raise NationalUnavailable("the simulated national system did not answer")
        with self._db.transaction() as tx:
            row = tx.one(
                "SELECT validity_code, records, revoked_at FROM national_insured"
                " WHERE issuer = ? AND serial = ?",
                (issuer, str(serial)),
            )
        if row is None:
            return NationalAnswer(4)
        if row["revoked_at"] is not None:
            return NationalAnswer(4, revoked=True)
        records = tuple(json.loads(row["records"]))
        return NationalAnswer(int(row["validity_code"]), records)


# --- managing the simulated system's data ----------------------------------------------------


@dataclass(frozen=True)
class InsuredEntry:
    card_id: str
    issuer: str
    serial: int
    validity_code: int
    records: tuple[dict[str, Any], ...]


def read_insured_jsonl(path: Path) -> Iterator[InsuredEntry]:
    """The lines of ``insured.jsonl`` (kiosk/sim/FORMATS.md), checked."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                certificate = item["certificate"]
                validity = int(item["validity_code"])
                records = item["records"]
                if validity not in (1, 2, 3, 4, 5) or not isinstance(records, list):
                    raise ValueError("validity_code must be 1-5 and records a list")
                if not all(isinstance(r, dict) for r in records):
                    raise ValueError("each record must be an object")
                entry = InsuredEntry(
                    card_id=str(item["card_id"]),
                    issuer=str(certificate["issuer"]),
                    serial=int(certificate["serial"]),
                    validity_code=validity,
                    records=tuple(records),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{number}: {exc}") from exc
            yield entry


def load_insured(db: Database, entries: Iterator[InsuredEntry], *, now: float) -> int:
    """Insert or replace the records; the number loaded."""
    rows = [
        (
            e.issuer,
            str(e.serial),
            e.card_id,
            e.validity_code,
            json.dumps(list(e.records), ensure_ascii=False),
            now,
        )
        for e in entries
    ]
    with db.transaction(write=True) as tx:
        tx.executemany(
            "INSERT INTO national_insured"
            " (issuer, serial, card_id, validity_code, records, revoked_at, loaded_at)"
            " VALUES (?, ?, ?, ?, ?, NULL, ?)"
            " ON CONFLICT (issuer, serial) DO UPDATE SET card_id = excluded.card_id,"
            " validity_code = excluded.validity_code, records = excluded.records,"
            " revoked_at = NULL, loaded_at = excluded.loaded_at",
            rows,
        )
    return len(rows)


def list_insured(db: Database) -> list[dict[str, Any]]:
    with db.transaction() as tx:
        rows = tx.all(
            "SELECT card_id, issuer, serial, validity_code, records, revoked_at"
            " FROM national_insured ORDER BY card_id"
        )
    return [
        {
            "card_id": r["card_id"],
            "issuer": r["issuer"],
            "serial": r["serial"],
            "validity_code": r["validity_code"],
            "records": len(json.loads(r["records"])),
            "revoked": r["revoked_at"] is not None,
        }
        for r in rows
    ]


def revoke_insured(
    db: Database,
    *,
    now: float,
    card_id: str | None = None,
    issuer: str | None = None,
    serial: int | None = None,
) -> int:
    """Mark certificates revoked on the national side; the number of rows changed."""
    with db.transaction(write=True) as tx:
        if card_id is not None:
            return tx.execute(
                "UPDATE national_insured SET revoked_at = ? WHERE card_id = ?", (now, card_id)
            )
        if issuer is None or serial is None:
            raise ValueError("give a card id, or an issuer and a serial")
        return tx.execute(
            "UPDATE national_insured SET revoked_at = ? WHERE issuer = ? AND serial = ?",
            (now, issuer, str(serial)),
        )
