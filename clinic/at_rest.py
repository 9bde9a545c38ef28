"""Personal data at rest: the record key, and how long the server keeps what it holds.

**Encryption.** The fields of the database that hold personal data - a verification's
eligibility records (``verifications.records``) and the kiosks' decrypted log payloads
(``outbox_records.payload``, ``outbox_conflicts.payload``, ``outbox_devices.heartbeat``) -
are sealed with AES-256-GCM under the *record key*, a 32-byte file kept outside the database
(``record_key_file`` in clinic.toml, default ``record.key`` in the data directory, mode 0600;
``clinic-server init`` makes it, ``clinic-server record-key`` makes it for an older data
directory). Each value is sealed with the name of its table, column and row as associated
data, so a sealed value copied to another row does not open there. A sealed value is
``aesgcm1:`` followed by base64 of the 12-byte nonce and the ciphertext; values written before
the key existed are sealed when the server starts (``seal_existing``).

A copy of the database alone (a backup, a stolen disk image of the database server) then
holds no name, insurer number or address. Keep the key file somewhere the database's backups
do not go, and back it up on its own: without it the records cannot be read.

**Retention.** After ``retention_days`` a verification is reduced to a summary without
personal data (when, which kiosk, the mode, the reason code and validity code, who decided
and handled it): its records and the card certificate's serial and expiry are removed, and
kiosk log payloads received that long ago are removed too. ``purge`` runs when the server
starts, every ten minutes while it runs, and by hand with ``clinic-server purge``. SQLite
runs with ``secure_delete`` so removed values are overwritten in the file.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import sqlite3
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from clinic.errors import StorageError
from clinic.storage import Database, Transaction
from contract.errors import ConfigError

log = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12
PREFIX = "aesgcm1:"
DAY_S = 86400.0
#: A visual check nobody decided for this long is abandoned (the staff queue shows a day).
ABANDONED_S = DAY_S


def aad(table: str, column: str, *row_key: object) -> bytes:
    """The associated data of one field: where it lives (table, column, row)."""
    return "/".join([table, column, *(str(k) for k in row_key)]).encode("utf-8")


class RecordCipher:
    """AES-256-GCM over the personal fields, with their place as associated data."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ConfigError(f"the record key is {len(key)} bytes, not {KEY_BYTES}")
        self._aead = AESGCM(key)

    # -- the key file --

    @staticmethod
    def create(path: Path) -> bool:
        """Write a new random key to ``path`` (0600) unless it exists; whether it was made."""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as out:
            out.write(base64.b64encode(os.urandom(KEY_BYTES)) + b"\n")
        return True

    @classmethod
    def load(cls, path: Path) -> RecordCipher:
        try:
            info = path.stat()
            raw = path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(
                f"the record key {path} is missing: run `clinic-server record-key` (or set "
                "record_key_file in clinic.toml to where the key is kept)"
            ) from None
        except OSError as exc:
            raise ConfigError(f"cannot read the record key {path}: {exc}") from exc
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise ConfigError(f"the record key {path} is readable by others: chmod 600 it")
        try:
            key = base64.b64decode(raw.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"the record key {path} is not base64") from None
        return cls(key)

    # -- fields --

    @staticmethod
    def is_sealed(value: str | None) -> bool:
        return value is not None and value.startswith(PREFIX)

    def seal(self, text: str, associated: bytes) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, text.encode("utf-8"), associated)
        return PREFIX + base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, value: str, associated: bytes) -> str:
        """The plain text of a sealed value (a value written before sealing: itself)."""
        if not value.startswith(PREFIX):
            return value
        try:
            raw = base64.b64decode(value[len(PREFIX) :], validate=True)
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], associated).decode(
                "utf-8"
            )
        except (binascii.Error, ValueError, InvalidTag):
            raise StorageError(
                "a sealed field does not open with the record key (another key, or the value "
                "was moved or altered)"
            ) from None


def seal_optional(cipher: RecordCipher | None, text: str | None, associated: bytes) -> str | None:
    if text is None or cipher is None:
        return text
    return cipher.seal(text, associated)


def open_optional(cipher: RecordCipher | None, value: str | None, associated: bytes) -> str | None:
    if value is None or cipher is None:
        return value
    return cipher.open(value, associated)


# --- retention -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PurgeResult:
    verifications: int
    outbox_records: int

    def __str__(self) -> str:
        return (
            f"{self.verifications} verification(s) reduced to their summary, "
            f"{self.outbox_records} kiosk log payload(s) removed"
        )


def purge(db: Database, *, retention_days: float, now: float) -> PurgeResult:
    """Reduce what is older than the retention period to a summary without personal data."""
    cutoff = now - retention_days * DAY_S
    with db.transaction(write=True) as tx:
        verifications = tx.execute(
            "UPDATE verifications SET records = NULL, cert_serial = NULL,"
            " cert_not_after = NULL WHERE created_at < ?"
            " AND (records IS NOT NULL OR cert_serial IS NOT NULL)"
            " AND (state = 'done' OR (state = 'awaiting_staff' AND created_at < ?))",
            (cutoff, min(cutoff, now - ABANDONED_S)),
        )
        if _has_table(db, tx, "manual_confirmations"):  # clinic.receipt_files.manual
            tx.execute(
                "UPDATE manual_confirmations SET details = '' WHERE recorded_at < ?"
                " AND details <> ''",
                (cutoff,),
            )
        outbox = 0
        if _has_table(db, tx, "outbox_records"):
            outbox = tx.execute(
                "UPDATE outbox_records SET payload = NULL, sealed = NULL WHERE received_at < ?"
                " AND (payload IS NOT NULL OR sealed IS NOT NULL)",
                (cutoff,),
            )
            tx.execute(
                "UPDATE outbox_conflicts SET payload = NULL, sealed = NULL WHERE received_at < ?"
                " AND (payload IS NOT NULL OR sealed IS NOT NULL)",
                (cutoff,),
            )
    if db.backend == "sqlite":
        _checkpoint(db)
    result = PurgeResult(verifications, outbox)
    if verifications or outbox:
        log.info("retention (%g days): %s", retention_days, result)
    return result


def _has_table(db: Database, tx: Transaction, table: str) -> bool:
    if db.backend == "sqlite":
        row = tx.one("SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
    else:
        row = tx.one("SELECT 1 AS x FROM information_schema.tables WHERE table_name = ?", (table,))
    return row is not None


def _checkpoint(db: Database) -> None:
    """Write the WAL back into the database and truncate it: removed values (overwritten in
    the database file by ``secure_delete``) leave the WAL file as well."""
    path = db.url_for_display.removeprefix("sqlite://")
    with contextlib.suppress(sqlite3.Error):
        conn = sqlite3.connect(path, timeout=10.0)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()


class Retention:
    """The retention period and the clock, for the server's periodic purge."""

    def __init__(self, db: Database, retention_days: float, *, clock: Callable[[], float]) -> None:
        self._db = db
        self.retention_days = retention_days
        self._clock = clock

    def purge(self) -> PurgeResult:
        return purge(self._db, retention_days=self.retention_days, now=self._clock())
