"""The server instances that share the database (component ``instances``).

Each running server writes a row when it starts, refreshes ``last_seen`` every
``HEARTBEAT_S`` seconds and removes it when it stops; ``clinic-server db status`` lists the
instances seen within ``STALE_S``. A row left by an instance that was killed ages out.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Any

from clinic.storage import Database, Migration, Schema

HEARTBEAT_S = 15.0
STALE_S = 60.0

INSTANCES_SCHEMA = Schema(
    "instances",
    (
        Migration.portable(
            1,
            """
            CREATE TABLE server_instances (
                instance_id TEXT PRIMARY KEY,
                host TEXT NOT NULL,
                pid INTEGER NOT NULL,
                kiosk_port INTEGER NOT NULL,
                staff_port INTEGER NOT NULL,
                started_at DOUBLE PRECISION NOT NULL,
                last_seen DOUBLE PRECISION NOT NULL
            )
            """,
        ),
    ),
)


@dataclass
class InstanceRecord:
    """This process's row in ``server_instances``."""

    db: Database
    kiosk_port: int
    staff_port: int
    instance_id: str = ""

    def register(self) -> None:
        self.instance_id = secrets.token_hex(8)
        now = time.time()
        self.db.write(
            "INSERT INTO server_instances (instance_id, host, pid, kiosk_port, staff_port,"
            " started_at, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                self.instance_id,
                socket.gethostname(),
                os.getpid(),
                self.kiosk_port,
                self.staff_port,
                now,
                now,
            ),
        )

    def heartbeat(self) -> None:
        now = time.time()
        self.db.write(
            "UPDATE server_instances SET last_seen = ? WHERE instance_id = ?",
            (now, self.instance_id),
        )
        self.db.write("DELETE FROM server_instances WHERE last_seen < ?", (now - 24 * 3600,))

    def unregister(self) -> None:
        self.db.write("DELETE FROM server_instances WHERE instance_id = ?", (self.instance_id,))


def live_instances(db: Database, now: float | None = None) -> list[dict[str, Any]]:
    """The instances that wrote their row within ``STALE_S`` seconds, oldest first."""
    moment = time.time() if now is None else now
    with db.transaction() as tx:
        return tx.all(
            "SELECT instance_id, host, pid, kiosk_port, staff_port, started_at, last_seen"
            " FROM server_instances WHERE last_seen >= ? ORDER BY started_at",
            (moment - STALE_S,),
        )
