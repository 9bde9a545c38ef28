"""The clinic server's settings and the layout of its data directory.

``clinic-server init`` writes ``clinic.toml`` in the data directory; command-line flags of
``serve`` override it. Everything the server reads is checked here, once, and a missing or
broken setting is a ``ConfigError`` that says which.

Data directory (default ``/var/lib/onshi-clinic``, or ``$ONSHI_CLINIC_DATA``)::

    clinic.toml              settings (below)
    clinic.db                SQLite database (unless ``database`` names PostgreSQL)
    server-ca.pem            the TLS CA kiosks pin           server-ca.key.pem  (0600)
    server.pem               the server's TLS certificate    server.key.pem     (0600)
    device-ca.pem            the CA of kiosk certificates    device-ca.key.pem  (0600)
    access-log.key           the access log's HMAC key (0600)
    access-log.anchor        the access log's heads, appended outside the database (0600)
    record.key               the key of the personal fields in the database (0600; may live
                             elsewhere: ``record_key_file``; see ``clinic.at_rest``)

The running server needs neither CA key: ``device-ca.key.pem`` (passphrase-protected with
``init --ca-passphrase-file``) may be moved off the server and given to ``device issue
--ca-key`` when a kiosk is added.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tomli_w

from clinic.receipt_files.settings import ReceiptSettings, parse_section, receipt_settings
from contract.errors import ConfigError

DEFAULT_DATA_DIR = Path("/var/lib/onshi-clinic")
SETTINGS_FILE = "clinic.toml"


def default_data_dir() -> Path:
    return Path(os.environ.get("ONSHI_CLINIC_DATA", str(DEFAULT_DATA_DIR)))


@dataclass(frozen=True)
class DataDir:
    root: Path

    @property
    def settings(self) -> Path:
        return self.root / SETTINGS_FILE

    @property
    def sqlite(self) -> Path:
        return self.root / "clinic.db"

    @property
    def server_ca(self) -> Path:
        return self.root / "server-ca.pem"

    @property
    def server_ca_key(self) -> Path:
        return self.root / "server-ca.key.pem"

    @property
    def server_cert(self) -> Path:
        return self.root / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.root / "server.key.pem"

    @property
    def device_ca(self) -> Path:
        return self.root / "device-ca.pem"

    @property
    def device_ca_key(self) -> Path:
        return self.root / "device-ca.key.pem"

    @property
    def access_log_key(self) -> Path:
        return self.root / "access-log.key"

    @property
    def access_log_anchor(self) -> Path:
        return self.root / "access-log.anchor"

    @property
    def record_key(self) -> Path:
        return self.root / "record.key"


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path
    #: ``postgresql://...``; None = SQLite in the data directory
    database: str | None = None
    host: str = "127.0.0.1"
    kiosk_port: int = 8443
    staff_port: int = 8444
    jpki_ca_files: tuple[Path, ...] = ()
    #: file paths or http(s) URLs of the JPKI CAs' CRLs
    jpki_crl_sources: tuple[str, ...] = ()
    crl_refresh_s: float = 3600.0
    nonce_ttl_s: float = 60.0
    session_idle_s: float = 15 * 60.0
    timezone: str = "Asia/Tokyo"
    #: "simulated", or "package.module:factory" for a deployment's real connector
    connector: str = "simulated"
    national_latency_ms: float = 0.0
    national_jitter_ms: float = 0.0
    national_failure_rate: float = 0.0
    national_down: bool = False
    db_pool_size: int = 4
    #: staff passwords hashed at once (64 MiB and one core each); more attempts get 429 at once
    login_hash_concurrency: int = 1
    log_level: str = "info"
    #: extra modules whose ``EXTENSION`` is loaded (see ``clinic.extensions``)
    extensions: tuple[str, ...] = field(default_factory=tuple)
    #: both listeners: the largest request head (request line and headers), in bytes, and
    #: how long a request head may take to arrive, in seconds (``clinic.listeners``)
    max_header_bytes: int = 8 * 1024
    header_timeout_s: float = 10.0
    #: visual checks one kiosk's staff button may confirm in any hour (``clinic.button``)
    button_confirms_per_hour: int = 10
    #: seconds during which staff may revoke a confirmation made with a kiosk's button
    button_revoke_window_s: float = 1800.0
    #: visual checks are confirmed on the dashboard only; the kiosk's button is refused
    require_dashboard_confirm: bool = False
    #: days after which records are reduced to a summary without personal data
    retention_days: float = 90.0
    #: the record key (``clinic.at_rest``); None = ``record.key`` in the data directory
    record_key_file: str | None = None
    #: undecryptable log records the server holds for one kiosk (``clinic.ingest``)
    outbox_quota_undecryptable: int = 1000
    #: log records one kiosk may have stored in any 24 hours
    outbox_quota_per_day: int = 50_000
    #: the clinic's 10-digit 医療機関コード (result files for receipt software)
    medical_institution_code: str | None = None
    #: ``[receipt_files]``: the folder result files go to (None = none written), encoding
    receipt_folder: str | None = None
    receipt_encoding: str = "cp932"

    @property
    def paths(self) -> DataDir:
        return DataDir(self.data_dir)

    @property
    def record_key_path(self) -> Path:
        return Path(self.record_key_file) if self.record_key_file else self.paths.record_key

    @property
    def receipt_settings(self) -> ReceiptSettings:
        """The result-file settings, checked (``clinic.receipt_files.settings``)."""
        return receipt_settings(
            self.receipt_folder, self.receipt_encoding, self.medical_institution_code
        )

    @property
    def database_url(self) -> str:
        return self.database or f"sqlite://{self.paths.sqlite}"

    def validated(self) -> ServerConfig:
        if self.host not in ("127.0.0.1", "localhost", "::1") and not os.environ.get(
            "ONSHI_CLINIC_ALLOW_NON_LOOPBACK"
        ):
            raise ConfigError(
                f"--host {self.host}: the server listens on loopback unless "
                "ONSHI_CLINIC_ALLOW_NON_LOOPBACK=1 is set (put it behind the clinic's network "
                "policy first)"
            )
        for port in (self.kiosk_port, self.staff_port):
            if not 0 <= port <= 65535:
                raise ConfigError(f"port {port} is out of range")
        if self.kiosk_port == self.staff_port and self.kiosk_port != 0:
            raise ConfigError("the kiosk API and the staff dashboard need two different ports")
        if not self.jpki_ca_files:
            raise ConfigError("no JPKI CA configured (init --jpki-ca, or serve --jpki-ca)")
        for path in self.jpki_ca_files:
            if not path.is_file():
                raise ConfigError(f"JPKI CA file {path} does not exist")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"unknown time zone {self.timezone!r}") from exc
        if not 1 <= self.login_hash_concurrency <= 64:
            raise ConfigError("login_hash_concurrency is between 1 and 64")
        if not 0 <= self.national_failure_rate <= 1:
            raise ConfigError("the failure rate is between 0 and 1")
        if not 1024 <= self.max_header_bytes <= 1024 * 1024:
            raise ConfigError("max_header_bytes is between 1024 and 1048576")
        if not 0.5 <= self.header_timeout_s <= 300:
            raise ConfigError("header_timeout_s is between 0.5 and 300 seconds")
        if self.button_confirms_per_hour < 0 or self.button_revoke_window_s < 0:
            raise ConfigError("button_confirms_per_hour and button_revoke_window_s are >= 0")
        if self.retention_days < 0:
            raise ConfigError("retention_days is >= 0")
        if self.outbox_quota_undecryptable < 0 or self.outbox_quota_per_day < 0:
            raise ConfigError("the outbox quotas are >= 0")
        self.receipt_settings  # noqa: B018 - raises ConfigError on a broken value
        paths = self.paths
        for needed in (paths.server_cert, paths.server_key, paths.device_ca):
            if not needed.is_file():
                raise ConfigError(f"{needed} is missing: run `clinic-server init` first")
        return self


_SETTING_KEYS = {
    "database": str,
    "host": str,
    "kiosk_port": int,
    "staff_port": int,
    "jpki_ca_files": list,
    "jpki_crl_sources": list,
    "crl_refresh_s": float,
    "nonce_ttl_s": float,
    "session_idle_s": float,
    "timezone": str,
    "extensions": list,
    "connector": str,
    "national_latency_ms": float,
    "national_jitter_ms": float,
    "national_failure_rate": float,
    "national_down": bool,
    "max_header_bytes": int,
    "header_timeout_s": float,
    "login_hash_concurrency": int,
    "button_confirms_per_hour": int,
    "button_revoke_window_s": float,
    "require_dashboard_confirm": bool,
    "retention_days": float,
    "record_key_file": str,
    "outbox_quota_undecryptable": int,
    "outbox_quota_per_day": int,
    "medical_institution_code": str,
}


def load_settings(data_dir: Path) -> dict[str, Any]:
    path = DataDir(data_dir).settings
    if not path.is_file():
        return {}
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    settings: dict[str, Any] = {}
    for key, raw_value in raw.items():
        if key == "receipt_files":
            settings.update(parse_section(raw_value, str(path)))
            continue
        kind = _SETTING_KEYS.get(key)
        if kind is None:
            raise ConfigError(f"{path}: unknown setting {key!r}")
        value = float(raw_value) if kind is float and isinstance(raw_value, int) else raw_value
        if not isinstance(value, kind):
            raise ConfigError(f"{path}: {key} must be a {kind.__name__}")
        settings[key] = value
    return settings


def save_settings(data_dir: Path, settings: dict[str, Any]) -> None:
    path = DataDir(data_dir).settings
    clean = {k: v for k, v in settings.items() if v is not None}
    path.write_text(tomli_w.dumps(clean), encoding="utf-8")


def config_from(data_dir: Path, overrides: dict[str, Any]) -> ServerConfig:
    """Settings file first, then non-None ``overrides`` (command-line flags)."""
    merged: dict[str, Any] = load_settings(data_dir)
    merged.update({k: v for k, v in overrides.items() if v is not None})
    if "jpki_ca_files" in merged:
        merged["jpki_ca_files"] = tuple(Path(p) for p in merged["jpki_ca_files"])
    if "jpki_crl_sources" in merged:
        merged["jpki_crl_sources"] = tuple(str(s) for s in merged["jpki_crl_sources"])
    if "extensions" in merged:
        merged["extensions"] = tuple(str(s) for s in merged["extensions"])
    try:
        return replace(ServerConfig(data_dir=data_dir), **merged)
    except TypeError as exc:
        raise ConfigError(str(exc)) from exc


def config_of(args: Any, **overrides: Any) -> ServerConfig:
    """The settings a ``clinic-server`` command runs with: its ``--data-dir`` and
    ``--database`` flags over the settings file, and any further flags in ``overrides``."""
    return config_from(Path(args.data_dir), {"database": args.database, **overrides})
