"""Settings of the outbox and the uploader, read from the kiosk's TOML file.

::

    [device]
    certificate = "/etc/onshi-kiosk/device.pem"       # device certificate (CN = device id)
    key = "/etc/onshi-kiosk/device.key.pem"           # its key: TLS client and request signing

    [server]
    url = "https://clinic.example:8443"
    ca = "/etc/onshi-kiosk/server-ca.pem"             # the clinic's TLS CA, pinned

    [outbox]
    path = "/var/lib/onshi-kiosk/outbox.db"
    public_key = "/etc/onshi-kiosk/outbox-key.json"   # from clinic-server outbox-key
    max_bytes = 67108864                              # 64 MiB
    warn_fraction = 0.5                               # amber alarm at half full

    [uploader]                                        # all optional
    batch_max_records = 500
    batch_max_bytes = 1048576
    batch_max_age_s = 2.0
    backoff_base_s = 1.0
    backoff_cap_s = 300.0
    retry_after_cap_s = 3600.0
    state_file = "/run/onshi-kiosk/uploader.json"

Relative paths are taken from the file's folder. Every problem is a ``ConfigError`` naming the
setting.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.errors import ConfigError
from kiosk.outbox.sealing import OutboxPublicKey
from kiosk.outbox.store import DEFAULT_MAX_BYTES, DEFAULT_WARN_FRACTION, Outbox
from kiosk.outbox.uploader import UploadPolicy


@dataclass(frozen=True)
class OutboxConfig:
    path: Path
    public_key: Path
    max_bytes: int = DEFAULT_MAX_BYTES
    warn_fraction: float = DEFAULT_WARN_FRACTION

    def open(self, device_id: str) -> Outbox:
        """The outbox these settings describe, for ``device_id``."""
        return Outbox(
            self.path,
            device_id=device_id,
            public_key=OutboxPublicKey.load(self.public_key),
            max_bytes=self.max_bytes,
            warn_fraction=self.warn_fraction,
        )


@dataclass(frozen=True)
class UploaderConfig:
    server_url: str
    server_ca: Path
    device_certificate: Path
    device_key: Path
    policy: UploadPolicy
    state_file: Path | None = None


@dataclass(frozen=True)
class KioskOutboxSettings:
    outbox: OutboxConfig
    uploader: UploaderConfig | None


def _table(doc: dict[str, Any], name: str, *, required: bool) -> dict[str, Any]:
    value = doc.get(name)
    if value is None:
        if required:
            raise ConfigError(f"[{name}] is missing")
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}] must be a table")
    return value


def _path(table: dict[str, Any], section: str, key: str, base: Path) -> Path:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"[{section}] {key} must be a path")
    path = Path(value)
    return path if path.is_absolute() else base / path


def _number(table: dict[str, Any], section: str, key: str, default: float, kind: type) -> Any:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"[{section}] {key} must be a number")
    if kind is int and not isinstance(value, int):
        raise ConfigError(f"[{section}] {key} must be a whole number")
    return kind(value)


def parse_settings(doc: dict[str, Any], base: Path) -> KioskOutboxSettings:
    """Settings from a parsed TOML document; ``base`` resolves relative paths."""
    table = _table(doc, "outbox", required=True)
    outbox = OutboxConfig(
        path=_path(table, "outbox", "path", base),
        public_key=_path(table, "outbox", "public_key", base),
        max_bytes=_number(table, "outbox", "max_bytes", DEFAULT_MAX_BYTES, int),
        warn_fraction=_number(table, "outbox", "warn_fraction", DEFAULT_WARN_FRACTION, float),
    )
    if "server" not in doc:
        return KioskOutboxSettings(outbox, None)
    server = _table(doc, "server", required=True)
    device = _table(doc, "device", required=True)
    up = _table(doc, "uploader", required=False)
    url = server.get("url")
    if not isinstance(url, str) or not url.startswith("https://"):
        raise ConfigError("[server] url must be an https:// URL")
    defaults = UploadPolicy()
    policy = UploadPolicy(
        batch_max_records=_number(
            up, "uploader", "batch_max_records", defaults.batch_max_records, int
        ),
        batch_max_bytes=_number(up, "uploader", "batch_max_bytes", defaults.batch_max_bytes, int),
        batch_max_age_s=_number(up, "uploader", "batch_max_age_s", defaults.batch_max_age_s, float),
        backoff_base_s=_number(up, "uploader", "backoff_base_s", defaults.backoff_base_s, float),
        backoff_cap_s=_number(up, "uploader", "backoff_cap_s", defaults.backoff_cap_s, float),
        retry_after_cap_s=_number(
            up, "uploader", "retry_after_cap_s", defaults.retry_after_cap_s, float
        ),
    )
    state_file = _path(up, "uploader", "state_file", base) if "state_file" in up else None
    uploader = UploaderConfig(
        server_url=url,
        server_ca=_path(server, "server", "ca", base),
        device_certificate=_path(device, "device", "certificate", base),
        device_key=_path(device, "device", "key", base),
        policy=policy,
        state_file=state_file,
    )
    return KioskOutboxSettings(outbox, uploader)


def load_settings(path: Path) -> KioskOutboxSettings:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    return parse_settings(doc, path.parent)
