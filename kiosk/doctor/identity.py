"""The device's enrolment: its certificate and key, and how long the certificate lasts."""

from __future__ import annotations

import datetime as dt
import stat

from cryptography import x509

from contract.self_check import Finding, failed, ok, warning
from kiosk.server_config import DeviceConfig

EXPIRY_WARNING = dt.timedelta(days=30)
ISSUE = "issue a new one on the clinic server: clinic-server device issue NAME --out DIR"


def check_enrolment(device: DeviceConfig) -> Finding:
    """The device certificate and key exist, belong together and the key is private."""
    from contract.errors import ConfigError

    name = "enrolment"
    for setting, path in (("certificate", device.certificate), ("key", device.key)):
        if not path.is_file():
            return failed(
                name,
                f"[device] {setting}: {path} is missing",
                "this kiosk is not enrolled: " + ISSUE + ", then copy the files here",
            )
    try:
        identity = device.identity()
    except ConfigError as exc:
        return failed(name, str(exc), "copy the certificate and key issued together; " + ISSUE)
    mode = stat.S_IMODE(device.key.stat().st_mode)
    if mode & 0o077:
        return warning(
            name,
            f"device {identity.device_id}; the key {device.key} is mode {mode:o}",
            f"chmod 600 {device.key}",
        )
    return ok(name, f"device {identity.device_id}; certificate and key match")


def check_certificate_expiry(device: DeviceConfig, now: dt.datetime | None = None) -> Finding:
    name = "certificate"
    now = now or dt.datetime.now(dt.UTC)
    try:
        certificate = x509.load_pem_x509_certificate(device.certificate.read_bytes())
    except (OSError, ValueError) as exc:
        return failed(name, f"cannot read {device.certificate}: {exc}", ISSUE)
    until = certificate.not_valid_after_utc
    left = until - now
    detail = f"valid until {until:%Y-%m-%d %H:%M} UTC"
    if left <= dt.timedelta(0):
        return failed(name, f"expired on {until:%Y-%m-%d}", ISSUE)
    if certificate.not_valid_before_utc > now:
        return failed(
            name,
            f"not valid before {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
            "check the clock",
        )
    if left < EXPIRY_WARNING:
        return warning(name, f"{detail} ({left.days} days left)", ISSUE + " before it expires")
    return ok(name, f"{detail} ({left.days} days left)")
