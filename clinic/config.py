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
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tomli_w

from kiosk.errors import ConfigError

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
    log_level: str = "info"
    #: extra modules whose ``EXTENSION`` is loaded (see ``clinic.extensions``)
    extensions: tuple[str, ...] = field(default_factory=tuple)

    @property
    def paths(self) -> DataDir:
        return DataDir(self.data_dir)

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
        if not 0 <= self.national_failure_rate <= 1:
            raise ConfigError("the failure rate is between 0 and 1")
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
