"""Settings of the outbox and the uploader, read from the kiosk's TOML file.

::

    [device]  [server]                                # see kiosk.server_config

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

``[server]`` and ``[device]`` are read by the appliance's own parser
(:func:`kiosk.server_config.parse_server_access`): the uploader reaches the server with the
same settings, timeouts included, through the same client. Without ``[server]`` only the
outbox can be opened (``kiosk uploader status`` and ``unpark`` still need ``[device]`` to know
the device). The file's drop-ins apply as for the kiosk (:mod:`kiosk.config_files`).
Relative paths are taken from the main file's folder. Every problem is a
``ConfigError`` naming the setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.errors import ConfigError
from contract.sealing import OutboxPublicKey
from kiosk.config_files import read_config_files
from kiosk.outbox.queue import DEFAULT_MAX_BYTES, DEFAULT_WARN_FRACTION, Outbox
from kiosk.outbox.uploader import UploadPolicy
from kiosk.server_config import ServerAccess, file_path, parse_server_access


@dataclass(frozen=True)
class OutboxConfig:
    path: Path
    public_key: Path
    max_bytes: int = DEFAULT_MAX_BYTES
    warn_fraction: float = DEFAULT_WARN_FRACTION

    def open(self, device_id: str) -> Outbox:
        """The outbox these settings describe, for ``device_id``.

        Its folder must exist: the outbox lives on the data partition, and a folder that is
        not there means the partition is not mounted (or the setting is wrong); creating it
        would put patients' records where they do not survive.
        """
        if not self.path.parent.is_dir():
            raise ConfigError(
                f"[outbox] path: the folder {self.path.parent} does not exist (is the data "
                "partition mounted?); create it, owned by the kiosk's user, mode 0700"
            )
        return Outbox(
            self.path,
            device_id=device_id,
            public_key=OutboxPublicKey.load(self.public_key),
            max_bytes=self.max_bytes,
            warn_fraction=self.warn_fraction,
        )


@dataclass(frozen=True)
class UploaderConfig:
    access: ServerAccess
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
        path=file_path(table, "outbox", "path", base),
        public_key=file_path(table, "outbox", "public_key", base),
        max_bytes=_number(table, "outbox", "max_bytes", DEFAULT_MAX_BYTES, int),
        warn_fraction=_number(table, "outbox", "warn_fraction", DEFAULT_WARN_FRACTION, float),
    )
    if "server" not in doc:
        return KioskOutboxSettings(outbox, None)
    access = parse_server_access(doc, base)
    up = _table(doc, "uploader", required=False)
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
    state_file = file_path(up, "uploader", "state_file", base) if "state_file" in up else None
    uploader = UploaderConfig(access, policy, state_file)
    return KioskOutboxSettings(outbox, uploader)


def load_settings(path: Path) -> KioskOutboxSettings:
    """The outbox's and the uploader's settings from the kiosk's file and its drop-ins."""
    sources = read_config_files(path)
    return sources.checked(lambda doc: parse_settings(doc, path.parent))
