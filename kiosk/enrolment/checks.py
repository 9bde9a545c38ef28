"""Checking an enrolment bundle before anything of it is installed.

:func:`read_bundle` reads the tar file safely into memory (:func:`contract.device_bundle.unpack`:
only the expected regular files, size limits, every digest checked). :func:`check_files` then
checks what the files mean, with the kiosk's own parsers, in a folder the caller gives (the
staging folder of an install, or a private temporary folder for ``kiosk enrol --check``):

- the key belongs to the certificate, and the certificate is a device certificate (client
  authentication, not a CA) for the device the manifest names, valid now;
- the server CA is a CA certificate; the outbox public key parses;
- ``kiosk.toml`` loads through :func:`kiosk.config.load_config` with the files beside it, and
  names those very files as the device identity, the server CA and the outbox key.

Every problem is one :class:`~contract.device_bundle.BundleError` line.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from contract.device_bundle import (
    DEVICE_CERTIFICATE,
    DEVICE_KEY,
    FILES,
    KIOSK_CONFIG,
    MANIFEST,
    MAX_BUNDLE_BYTES,
    MEMBER_MODES,
    OUTBOX_KEY,
    SERVER_CA,
    BundleError,
    Manifest,
    unpack,
)
from contract.device_signing import DeviceIdentity
from contract.errors import ConfigError, DeviceAuthError
from contract.sealing import OutboxPublicKey
from kiosk.config import KioskConfig, load_config


@dataclass(frozen=True)
class Bundle:
    """A bundle read from its file: the manifest, its bytes and the files it lists."""

    manifest: Manifest
    manifest_bytes: bytes
    files: dict[str, bytes]

    def members(self) -> dict[str, bytes]:
        """Every member to install, the manifest included."""
        return {MANIFEST: self.manifest_bytes, **self.files}


@dataclass(frozen=True)
class CheckedBundle:
    bundle: Bundle
    config: KioskConfig
    #: the certificate's last day of validity
    not_after: dt.datetime


def read_bundle(path: Path) -> Bundle:
    """The bundle in ``path``, read and its digests checked; nothing is written."""
    try:
        with path.open("rb") as source:
            data = source.read(MAX_BUNDLE_BYTES + 1)
    except OSError as exc:
        raise BundleError(f"cannot read the bundle {path}: {exc.strerror or exc}") from None
    manifest, files = unpack(data)
    return Bundle(manifest, manifest.to_json(), files)


def write_members(folder: Path, members: dict[str, bytes]) -> None:
    """Write ``members`` into ``folder`` (the key 0600, the rest 0644), each synced."""
    for name, data in members.items():
        target = folder / name
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MEMBER_MODES[name])
        try:
            os.fchmod(fd, MEMBER_MODES[name])
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)


def _device_certificate(identity: DeviceIdentity, device: str, now: dt.datetime) -> dt.datetime:
    cert = identity.certificate
    try:
        named = identity.device_id
    except DeviceAuthError as exc:
        raise BundleError(f"{DEVICE_CERTIFICATE}: {exc}") from None
    if named != device:
        raise BundleError(f"{DEVICE_CERTIFICATE} is for {named!r}, the manifest names {device!r}")
    try:
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise BundleError(f"{DEVICE_CERTIFICATE} is not a device certificate ({exc})") from None
    if basic.ca or ExtendedKeyUsageOID.CLIENT_AUTH not in usage:
        raise BundleError(
            f"{DEVICE_CERTIFICATE} is not a device certificate (client authentication, not a CA)"
        )
    if now < cert.not_valid_before_utc:
        raise BundleError(
            f"{DEVICE_CERTIFICATE} is valid only from {cert.not_valid_before_utc:%Y-%m-%d %H:%M} "
            "UTC: is this unit's clock right?"
        )
    if now > cert.not_valid_after_utc:
        raise BundleError(
            f"{DEVICE_CERTIFICATE} expired on {cert.not_valid_after_utc:%Y-%m-%d}: issue a "
            "new bundle"
        )
    return cert.not_valid_after_utc


def _server_ca(data: bytes) -> None:
    try:
        ca = x509.load_pem_x509_certificate(data)
        basic = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    except (ValueError, x509.ExtensionNotFound) as exc:
        raise BundleError(f"{SERVER_CA} is not a readable CA certificate ({exc})") from None
    if not basic.ca:
        raise BundleError(f"{SERVER_CA} is not a CA certificate")


def check_files(bundle: Bundle, folder: Path, now: dt.datetime | None = None) -> CheckedBundle:
    """Write the bundle's files into the empty ``folder`` and check them there."""
    now = now or dt.datetime.now(dt.UTC)
    write_members(folder, bundle.members())
    try:
        identity = DeviceIdentity.load(folder / DEVICE_CERTIFICATE, folder / DEVICE_KEY)
    except ConfigError as exc:
        text = str(exc).replace(f"{folder}/", "")
        raise BundleError(f"the device key and certificate: {text}") from None
    not_after = _device_certificate(identity, bundle.manifest.device, now)
    _server_ca(bundle.files[SERVER_CA])
    try:
        OutboxPublicKey.from_json(bundle.files[OUTBOX_KEY].decode("utf-8"), source=OUTBOX_KEY)
    except (ConfigError, UnicodeDecodeError) as exc:
        raise BundleError(str(exc)) from None
    try:
        config = load_config(folder / KIOSK_CONFIG)
    except ConfigError as exc:
        text = str(exc).replace(f"{folder}/", "").replace(f"{folder.resolve()}/", "")
        raise BundleError(f"{KIOSK_CONFIG}: {text}") from None
    expected = {
        "[device] certificate": (config.device.certificate, DEVICE_CERTIFICATE),
        "[device] key": (config.device.key, DEVICE_KEY),
        "[server] ca": (config.server.ca, SERVER_CA),
        "[outbox] public_key": (config.outbox.public_key, OUTBOX_KEY),
    }
    base = folder.resolve()
    for setting, (path, name) in expected.items():
        if path.resolve() != base / name:
            raise BundleError(
                f"{KIOSK_CONFIG}: {setting} must be the bundle's own {name!r}, not {str(path)!r}"
            )
    return CheckedBundle(bundle, config, not_after)


__all__ = ["FILES", "Bundle", "CheckedBundle", "check_files", "read_bundle", "write_members"]
