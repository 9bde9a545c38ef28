"""The root of the one exception tree, and the errors of the shared formats.

Each program hangs its own errors under :class:`OnshiError`, so one ``except OnshiError``
catches whatever the project raises on purpose, and each error says whether repeating the
operation can help (``temporary``)::

    OnshiError
    ├── ConfigError            a broken or missing setting or key file (also ValueError)
    ├── DeviceAuthError        a request's device signature does not hold
    ├── UnsealError            a sealed outbox body does not open with this key and header
    ├── kiosk.errors.KioskError     the kiosk's tree (card, server, outbox...)
    └── clinic.errors.ClinicError   the clinic server's tree (storage, national system...)
"""

from __future__ import annotations


class OnshiError(Exception):
    """Root of every error the project raises on purpose."""

    #: True when the same operation may succeed if repeated later.
    temporary: bool = False
    #: A short stable code for logs and screens, e.g. ``"card.removed"``.
    code: str = "onshi"


class ConfigError(OnshiError, ValueError):
    """A configuration file, key file or value is missing or malformed."""

    code = "config"


class DeviceAuthError(OnshiError):
    """A request's device signature is missing, malformed, stale or does not verify."""

    code = "device_auth"


class UnsealError(OnshiError):
    """A sealed body does not open with this key and header (tampered, moved or foreign)."""

    code = "outbox.unseal"
