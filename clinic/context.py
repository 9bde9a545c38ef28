"""What the kiosk API and the staff dashboard share: one object, built in ``clinic.server``."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from clinic.access_log import AccessLog
from clinic.button import StaffButton
from clinic.devices import DeviceRegistry
from clinic.eligibility import EligibilityService
from clinic.events import EventHub
from clinic.jpki import JpkiTrust
from clinic.national.interface import NationalConnector
from clinic.staff import StaffAccounts
from clinic.storage import Database

T = TypeVar("T")


@dataclass
class ClinicContext:
    db: Database
    clock: Callable[[], float]
    events: EventHub
    trust: JpkiTrust
    connector: NationalConnector
    devices: DeviceRegistry
    service: EligibilityService
    staff: StaffAccounts
    access_log: AccessLog
    #: Run short database work on the event loop itself (SQLite: a local file, tens of
    #: microseconds a statement); with PostgreSQL it goes to the worker threads.
    inline_db: bool = False
    #: Worker threads for the blocking parts (database, connector).
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(16, thread_name_prefix="clinic-worker")
    )
    #: Extensions may keep their own objects here (e.g. ``extras["ingest"]``).
    extras: dict[str, Any] = field(default_factory=dict)
    #: The kiosks' staff button: its rate, alarms and revocation (``clinic.button``).
    button: StaffButton | None = None

    async def run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking ``func`` on a worker thread and wait for it."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(func, *args, **kwargs))

    async def run_db(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run short database work: inline on SQLite, on a worker thread otherwise.

        Hopping threads costs more than a SQLite statement, and worker threads fight the
        event loop for the interpreter lock; so the kiosk API's hot path stays on the loop.
        """
        if self.inline_db:
            return func(*args, **kwargs)
        return await self.run(func, *args, **kwargs)

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.staff.close()
        self.db.close()
