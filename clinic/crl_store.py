"""The JPKI revocation lists in force, shared by every instance through the database.

Each instance fetches the CRLs from the configured sources on its own schedule
(``crl_refresh_s``). What one instance fetched and checked is stored here (table
``jpki_crls``, one row per CA: the newest CRL by its ``thisUpdate``), and every instance
takes a newer stored CRL into force within ``SHARED_CHECK_S``. So a card revoked in a CRL that
instance A fetched is refused by instance B too, long before B's own next fetch; and an
instance that starts while the sources cannot be reached starts with the CRLs in force rather
than none.

A stored CRL is checked again (its CA's signature) before it is put in force: the database is
not trusted to hold only what an instance checked. Only a newer CRL replaces a stored one.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from clinic.storage import Database, Migration, Schema

log = logging.getLogger(__name__)

CRL_SCHEMA = Schema(
    "jpki_crls",
    (
        Migration.portable(
            1,
            """
            CREATE TABLE jpki_crls (
                issuer TEXT PRIMARY KEY,
                this_update DOUBLE PRECISION NOT NULL,
                crl TEXT NOT NULL,
                source TEXT NOT NULL,
                stored_at DOUBLE PRECISION NOT NULL
            )
            """,
        ),
    ),
)

#: How often an instance looks for a CRL another instance stored (seconds).
SHARED_CHECK_S = 30.0


def issuer_key(subject_der: bytes) -> str:
    """The row key of a CA: the SHA-256 of its subject name (DER)."""
    return hashlib.sha256(subject_der).hexdigest()


@dataclass(frozen=True)
class StoredCrl:
    issuer: str
    this_update: float
    der: bytes
    source: str


class CrlStore:
    """The ``jpki_crls`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def save(self, crl: StoredCrl, *, now: float) -> bool:
        """Store ``crl`` unless the stored one for its CA is as new or newer; True if stored."""
        changed = self._db.write(
            "INSERT INTO jpki_crls (issuer, this_update, crl, source, stored_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (issuer) DO UPDATE SET"
            " this_update = excluded.this_update, crl = excluded.crl,"
            " source = excluded.source, stored_at = excluded.stored_at"
            " WHERE excluded.this_update > jpki_crls.this_update",
            (
                crl.issuer,
                crl.this_update,
                base64.b64encode(crl.der).decode("ascii"),
                crl.source,
                now,
            ),
        )
        return changed > 0

    def newer_than(self, in_force: dict[str, float]) -> list[StoredCrl]:
        """The stored CRLs newer than those in force (CA key -> its CRL's ``thisUpdate``).

        Only the newer ones are read whole: a CRL can be megabytes, and this runs every
        ``SHARED_CHECK_S`` in every instance."""
        with self._db.transaction() as tx:
            dates = tx.all("SELECT issuer, this_update FROM jpki_crls")
            newer = [
                row["issuer"]
                for row in dates
                if float(row["this_update"]) > in_force.get(row["issuer"], float("-inf"))
            ]
            rows = [
                tx.one(
                    "SELECT issuer, this_update, crl, source FROM jpki_crls WHERE issuer = ?",
                    (issuer,),
                )
                for issuer in newer
            ]
        return [
            StoredCrl(
                row["issuer"],
                float(row["this_update"]),
                base64.b64decode(row["crl"]),
                row["source"],
            )
            for row in rows
            if row is not None
        ]


async def keep_current(
    refresh: Callable[[], None],
    load_shared: Callable[[], None],
    run: Callable[[Callable[[], None]], Awaitable[None]],
    refresh_s: float,
) -> None:
    """Forever: ``refresh`` (fetch the sources) every ``refresh_s``; in between, every
    ``SHARED_CHECK_S``, ``load_shared`` (take what other instances stored). ``run`` runs
    each on a worker thread."""
    refresh_s = max(0.5, refresh_s)
    next_fetch = time.monotonic() + refresh_s
    while True:
        await asyncio.sleep(max(0.0, min(SHARED_CHECK_S, next_fetch - time.monotonic())))
        fetch = time.monotonic() >= next_fetch
        if fetch:
            next_fetch = time.monotonic() + refresh_s
        try:
            await run(refresh if fetch else load_shared)
        except Exception:
            log.exception("CRL refresh failed")
