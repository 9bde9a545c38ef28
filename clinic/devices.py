"""The kiosks the clinic registered: device certificates, revocation and health.

Health: each kiosk posts a heartbeat every ``interval_s`` seconds (``POST /api/v1/heartbeat``,
:mod:`contract.heartbeat`); the last one is kept in ``devices`` (``health_status``,
``health_detail``, ``health_at``). :meth:`DeviceRegistry.health` reads it back: a kiosk is
*flagged* - the dashboard's badge on every page counts it - while it is silent (no heartbeat
for three of its intervals) or reports a fault (reader missing, clock not synchronised, an
outbox alarm), and stops being flagged with its next good heartbeat. A kiosk that never sent
one, and a revoked kiosk, are not flagged.

A request's device certificate is accepted when the clinic's device CA issued it, it is
within its validity, it was registered by ``clinic-server device issue`` and it is not revoked
(``device revoke``). A verified certificate is remembered by fingerprint for a few seconds, so
the registry is read once per kiosk every ``cache_ttl_s``, not once per request; a revocation
therefore takes effect within that time even while the server runs.

Every request id a kiosk signs is remembered in the database (``device_requests``) until the
request's signature would be too old anyway, and a second request with the same id is refused:
kept in the database, the memory is the same for every server instance that shares it.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes

from clinic.errors import ConflictError
from clinic.pki import CertificateAuthority, key_pem, new_device_key, valid_device_id
from clinic.storage import Database, Migration, Schema
from contract.device_signing import device_id_of
from contract.errors import DeviceAuthError
from contract.heartbeat import SILENT_AFTER_BEATS, KioskHealth


class DeviceRefused(DeviceAuthError):
    """A well-signed request from a certificate the clinic does not accept (HTTP 403)."""

    code = "device_auth.refused"


class RequestReplayed(DeviceAuthError):
    """A request id that was already used: a copy of an earlier request (HTTP 401)."""

    code = "device_auth.replayed"


#: The request ids seen, kept until ``expires_at`` (the signed timestamp plus the allowed
#: skew: after that the signature is refused as too old, copied or not).
REPLAY_SCHEMA = Schema(
    "device_requests",
    (
        Migration.portable(
            1,
            "CREATE TABLE device_requests ("
            " device_id TEXT NOT NULL,"
            " request_id TEXT NOT NULL,"
            " expires_at DOUBLE PRECISION NOT NULL,"
            " PRIMARY KEY (device_id, request_id));"
            "CREATE INDEX device_requests_expiry ON device_requests (expires_at)",
        ),
    ),
)

#: How often (clock seconds) the expired request ids are deleted, at most.
REPLAY_PURGE_INTERVAL_S = 60.0


@dataclass(frozen=True)
class IssuedDevice:
    device_id: str
    certificate: x509.Certificate
    key_pem: bytes


@dataclass(frozen=True)
class DeviceHealth:
    """One kiosk's last heartbeat, judged at one moment."""

    device_id: str
    revoked: bool
    #: when the last heartbeat came (server clock), None when none ever did
    reported_at: float | None
    #: the status the kiosk reported (``ok``, ``degraded``, ``error``)
    status: str | None
    health: KioskHealth | None
    #: no heartbeat for ``SILENT_AFTER_BEATS`` of the kiosk's intervals
    silent: bool
    faults: tuple[str, ...]

    @property
    def flagged(self) -> bool:
        """Whether staff should look at this kiosk (see the module docstring)."""
        if self.revoked or self.reported_at is None:
            return False
        return self.silent or bool(self.faults) or self.status != "ok"


def judge_health(row: dict[str, Any], now: float) -> DeviceHealth:
    """The health of one row of :meth:`DeviceRegistry.list` at ``now``."""
    reported_at = row.get("health_at")
    health = None
    silent = False
    faults: tuple[str, ...] = ()
    if reported_at is not None:
        detail = row.get("health_detail")
        health = KioskHealth.from_detail(detail if isinstance(detail, dict) else {})
        silent = now - float(reported_at) > SILENT_AFTER_BEATS * health.interval_s
        faults = health.faults()
    return DeviceHealth(
        device_id=row["device_id"],
        revoked=bool(row.get("revoked")),
        reported_at=None if reported_at is None else float(reported_at),
        status=row.get("health_status"),
        health=health,
        silent=silent,
        faults=faults,
    )


@dataclass
class _Verified:
    device_id: str
    checked_at: float


class DeviceRegistry:
    def __init__(
        self,
        db: Database,
        device_ca: x509.Certificate,
        *,
        clock: Callable[[], float],
        cache_ttl_s: float = 5.0,
        touch_interval_s: float = 10.0,
    ) -> None:
        self._db = db
        self._ca = device_ca
        self._clock = clock
        self._cache_ttl_s = cache_ttl_s
        self._touch_interval_s = touch_interval_s
        self._cache: dict[bytes, _Verified] = {}
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()
        self._replay_purged_at = 0.0

    # -- request checks --

    def cached(self, certificate: x509.Certificate) -> str | None:
        """The device id if this certificate was accepted within the last few seconds."""
        entry = self._cache.get(certificate.fingerprint(hashes.SHA256()))
        if entry is not None and self._clock() - entry.checked_at < self._cache_ttl_s:
            return entry.device_id
        return None

    def check(self, certificate: x509.Certificate) -> str:
        """The device id of an acceptable certificate; ``DeviceRefused`` otherwise.

        Reads the database: call from a worker thread.
        """
        if not _issued_by(certificate, self._ca):
            raise DeviceRefused("device certificate not issued by the clinic's device CA")
        now = self._clock()
        moment = dt.datetime.fromtimestamp(now, dt.UTC)
        if not certificate.not_valid_before_utc <= moment <= certificate.not_valid_after_utc:
            raise DeviceRefused("device certificate is outside its validity")
        device_id = device_id_of(certificate)
        fp = certificate.fingerprint(hashes.SHA256())
        with self._db.transaction() as tx:
            row = tx.one(
                "SELECT device_id, revoked_at FROM device_certificates WHERE fingerprint = ?",
                (fp.hex(),),
            )
        if row is None or row["device_id"] != device_id:
            raise DeviceRefused(f"device certificate for {device_id!r} is not registered")
        if row["revoked_at"] is not None:
            raise DeviceRefused(f"device certificate for {device_id!r} is revoked")
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[fp] = _Verified(device_id, now)
        return device_id

    def remember_request(self, device_id: str, request_id: str, expires_at: float) -> None:
        """Record a request id; ``RequestReplayed`` if this device already used it.

        Writes the database: call with ``run_db``. Expired ids are deleted on the way, at most
        once every ``REPLAY_PURGE_INTERVAL_S``.
        """
        now = self._clock()
        if now - self._replay_purged_at >= REPLAY_PURGE_INTERVAL_S:
            self._replay_purged_at = now
            self._db.write("DELETE FROM device_requests WHERE expires_at < ?", (now,))
        added = self._db.write(
            "INSERT INTO device_requests (device_id, request_id, expires_at)"
            " VALUES (?, ?, ?) ON CONFLICT (device_id, request_id) DO NOTHING",
            (device_id, request_id, expires_at),
        )
        if added == 0:
            raise RequestReplayed(f"request id {request_id} of {device_id!r} was already used")

    def touch_due(self, device_id: str) -> bool:
        """True when the device's last-seen time should be written now (throttled)."""
        now = self._clock()
        last = self._touched.get(device_id, 0.0)
        if now - last < self._touch_interval_s:
            return False
        self._touched[device_id] = now
        return True

    def touch(self, device_id: str) -> None:
        self._db.write(
            "UPDATE devices SET last_seen = ? WHERE device_id = ?", (self._clock(), device_id)
        )

    def record_health(self, device_id: str, status: str, detail: dict[str, Any]) -> None:
        now = self._clock()
        with self._db.transaction(write=True) as tx:
            tx.execute(
                "UPDATE devices SET health_status = ?, health_detail = ?, health_at = ?,"
                " last_seen = ? WHERE device_id = ?",
                (status, json.dumps(detail, ensure_ascii=False), now, now, device_id),
            )

    def health(self) -> list[DeviceHealth]:
        """Every kiosk's last heartbeat, judged now (reads the database)."""
        now = self._clock()
        return [judge_health(row, now) for row in self.list()]

    def flagged(self) -> list[DeviceHealth]:
        """The kiosks staff should look at: silent, or reporting a fault."""
        return [h for h in self.health() if h.flagged]

    # -- administration --

    def issue(self, ca: CertificateAuthority, device_id: str) -> IssuedDevice:
        if not valid_device_id(device_id):
            raise ValueError("a device name is 1-64 letters, digits, '-' or '_'")
        key = new_device_key()
        now = self._clock()
        certificate = ca.issue_device(device_id, key, now=dt.datetime.fromtimestamp(now, dt.UTC))
        with self._db.transaction(write=True) as tx:
            tx.execute(
                "INSERT INTO devices (device_id, created_at) VALUES (?, ?)"
                " ON CONFLICT (device_id) DO NOTHING",
                (device_id, now),
            )
            try:
                tx.execute(
                    "INSERT INTO device_certificates"
                    " (serial, device_id, fingerprint, not_after, issued_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        str(certificate.serial_number),
                        device_id,
                        certificate.fingerprint(hashes.SHA256()).hex(),
                        certificate.not_valid_after_utc.timestamp(),
                        now,
                    ),
                )
            except ConflictError as exc:  # pragma: no cover - random 159-bit serials
                raise ValueError(f"certificate collision: {exc}") from exc
        return IssuedDevice(device_id, certificate, key_pem(key))

    def revoke(self, device_id: str) -> int:
        """Revoke every certificate of ``device_id``; how many were still valid."""
        now = self._clock()
        with self._db.transaction(write=True) as tx:
            count = tx.execute(
                "UPDATE device_certificates SET revoked_at = ?"
                " WHERE device_id = ? AND revoked_at IS NULL",
                (now, device_id),
            )
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if v.device_id != device_id}
        return count

    def list(self) -> list[dict[str, Any]]:
        with self._db.transaction() as tx:
            rows = tx.all(
                "SELECT d.device_id, d.created_at, d.last_seen, d.health_status,"
                " d.health_detail, d.health_at,"
                " SUM(CASE WHEN c.revoked_at IS NULL THEN 1 ELSE 0 END) AS active_certs,"
                " COUNT(c.serial) AS certs, MAX(c.not_after) AS not_after"
                " FROM devices d LEFT JOIN device_certificates c ON c.device_id = d.device_id"
                " GROUP BY d.device_id, d.created_at, d.last_seen, d.health_status,"
                " d.health_detail, d.health_at ORDER BY d.device_id"
            )
        for row in rows:
            row["revoked"] = int(row["active_certs"] or 0) == 0
            row["health_detail"] = json.loads(row["health_detail"] or "{}")
        return rows


def _issued_by(certificate: x509.Certificate, ca: x509.Certificate) -> bool:
    if certificate.issuer != ca.subject:
        return False
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
