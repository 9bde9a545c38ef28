"""Who this kiosk is and how it reaches the clinic server: ``[device]`` and ``[server]``.

One parser for both programs that read the kiosk's TOML file: the appliance
(:mod:`kiosk.config`) and the uploader (:mod:`kiosk.outbox.config`). Both reach the server
through the same client (:func:`kiosk.clinic_client.open_clinic_client`), with these
timeouts::

    [device]
    certificate = "/etc/onshi-kiosk/device.pem"       # device certificate (CN = device id)
    key = "/etc/onshi-kiosk/device.key.pem"           # its key: TLS client and request signing

    [server]
    url = "https://clinic.example:8443"
    # or, with several instances of the server (docs/scale-out.md), in order of preference:
    # urls = ["https://clinic-a.example:8443", "https://clinic-b.example:8443"]
    ca = "/etc/onshi-kiosk/server-ca.pem"             # the clinic's TLS CA, pinned
    connect_timeout_s = 3.0        # optional, these are the defaults
    read_timeout_s = 10.0
    challenge_max_age_s = 25.0     # a prefetched challenge older than this is fetched again
    long_poll_s = 10.0             # one long-poll while staff decide a visual check

Relative paths are taken from ``base`` (the file's folder). Every problem is one
:class:`~contract.errors.ConfigError` line naming the setting; unknown settings are refused,
so a typo never silently keeps a default. The small checks here (:func:`section`,
:func:`refuse_unknown`, :func:`seconds`, :func:`file_path`) are the ones the kiosk's other
sections use too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from contract.device_signing import DeviceIdentity
from contract.errors import ConfigError

SERVER_KEYS = frozenset(
    {
        "url",
        "urls",
        "ca",
        "connect_timeout_s",
        "read_timeout_s",
        "challenge_max_age_s",
        "long_poll_s",
    }
)
DEVICE_KEYS = frozenset({"certificate", "key"})


@dataclass(frozen=True)
class DeviceConfig:
    """The device certificate and its key (TLS client, and the key that signs requests)."""

    certificate: Path
    key: Path

    def identity(self) -> DeviceIdentity:
        """The device identity in these files (its id is the certificate's CN)."""
        return DeviceIdentity.load(self.certificate, self.key)


@dataclass(frozen=True)
class ServerConfig:
    """``url`` is the first server; ``urls`` every server in order of preference (the
    client moves to the next when one cannot be reached)."""

    url: str
    ca: Path
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 10.0
    challenge_max_age_s: float = 25.0
    long_poll_s: float = 10.0
    urls: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.urls:
            object.__setattr__(self, "urls", (self.url,))
        elif self.urls[0] != self.url:
            raise ValueError("ServerConfig: url must be the first of urls")

    @property
    def timeout(self) -> httpx.Timeout:
        """The HTTP timeouts of every request to the server (a long-poll adds its wait)."""
        return httpx.Timeout(
            connect=self.connect_timeout_s,
            read=self.read_timeout_s,
            write=self.read_timeout_s,
            pool=self.connect_timeout_s,
        )


@dataclass(frozen=True)
class ServerAccess:
    """``[server]`` and ``[device]``: everything needed to open the client."""

    server: ServerConfig
    device: DeviceConfig


# --- checks shared by every section --------------------------------------------------------------


def section(doc: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The table ``[name]`` (empty when it is absent)."""
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}] must be a table")
    return value


def refuse_unknown(name: str, table: Mapping[str, Any], known: frozenset[str]) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"[{name}] {unknown[0]} is not a known setting (known: {', '.join(sorted(known))})"
        )


def seconds(
    table: Mapping[str, Any], name: str, key: str, default: float, *, low: float = 0.0
) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > low:
        raise ConfigError(f"[{name}] {key} must be a number of seconds above {low:g}")
    return float(value)


def file_path(table: Mapping[str, Any], name: str, key: str, base: Path) -> Path:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"[{name}] {key} must be a path")
    path = Path(value)
    return path if path.is_absolute() else base / path


# --- [server] and [device] -----------------------------------------------------------------------


def parse_server(table: Mapping[str, Any], base: Path) -> ServerConfig:
    refuse_unknown("server", table, SERVER_KEYS)
    urls = _server_urls(table)
    long_poll = seconds(table, "server", "long_poll_s", 10.0)
    if long_poll > 25.0:
        raise ConfigError("[server] long_poll_s must be at most 25 seconds (the server's limit)")
    max_age = seconds(table, "server", "challenge_max_age_s", 25.0)
    if max_age >= 60.0:
        raise ConfigError(
            "[server] challenge_max_age_s must stay below the server's nonce lifetime (60 s)"
        )
    return ServerConfig(
        url=urls[0],
        urls=urls,
        ca=file_path(table, "server", "ca", base),
        connect_timeout_s=seconds(table, "server", "connect_timeout_s", 3.0),
        read_timeout_s=seconds(table, "server", "read_timeout_s", 10.0),
        challenge_max_age_s=max_age,
        long_poll_s=long_poll,
    )


def _server_urls(table: Mapping[str, Any]) -> tuple[str, ...]:
    """``url``, or ``urls`` (a list of one or more), each https://, no repeats."""
    if "url" in table and "urls" in table:
        raise ConfigError("[server] give url or urls, not both")
    if "urls" in table:
        listed = table["urls"]
        if not isinstance(listed, list) or not listed:
            raise ConfigError("[server] urls must be a list of https:// URLs")
        if len(listed) > 8:
            raise ConfigError("[server] urls: at most 8 servers")
    else:
        listed = [table.get("url")]
    urls: list[str] = []
    for value in listed:
        if not isinstance(value, str) or not value.startswith("https://"):
            what = (
                "urls must be https:// URLs" if "urls" in table else "url must be an https:// URL"
            )
            raise ConfigError(f"[server] {what} (got {value!r})")
        url = value.rstrip("/")
        if url in urls:
            raise ConfigError(f"[server] urls lists {url} twice")
        urls.append(url)
    return tuple(urls)


def parse_device(table: Mapping[str, Any], base: Path) -> DeviceConfig:
    refuse_unknown("device", table, DEVICE_KEYS)
    return DeviceConfig(
        certificate=file_path(table, "device", "certificate", base),
        key=file_path(table, "device", "key", base),
    )


def parse_server_access(doc: Mapping[str, Any], base: Path) -> ServerAccess:
    """``[server]`` and ``[device]`` of a parsed TOML document; both are required."""
    for name in ("device", "server"):
        if name not in doc:
            raise ConfigError(f"[{name}] is missing")
    server = parse_server(section(doc, "server"), base)
    return ServerAccess(server, parse_device(section(doc, "device"), base))
