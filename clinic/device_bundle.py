"""``clinic-server device issue NAME --bundle FILE``: one unit's enrolment bundle.

The bundle (format in :mod:`contract.device_bundle`) holds the device key and certificate
just issued, the server's TLS CA, the outbox public key and a complete, commented
``kiosk.toml`` for the unit: server URL, reader, screen layout and GPIO pins filled in, every
path relative to the file's own folder. ``kiosk enrol`` checks and installs it on the unit
(hardware.md, "Enrolling a unit").

The server URL defaults to ``https://NAME:PORT`` where NAME is the first name in the server
certificate besides the loopback ones (``clinic-server init --hostname``) and PORT the kiosk
API's port; a server that knows no public name needs ``--server-url``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from cryptography import x509

from clinic.config import ServerConfig
from clinic.outbox_key import outbox_key_paths
from contract.device_bundle import (
    DEVICE_CERTIFICATE,
    DEVICE_KEY,
    KIOSK_CONFIG,
    OUTBOX_KEY,
    SERVER_CA,
    manifest_for,
    pack,
)
from contract.errors import ConfigError
from contract.sealing import OutboxPrivateKey, OutboxPublicKey

#: The kiosk's default pins (kiosk.hw.config.GpioConfig), one option each.
GPIO_PINS = {"green": 17, "amber": 27, "red": 22, "blue": 23, "buzzer": 18, "staff_button": 24}
#: [gpio] backend: the Pi's lgpio; mock for a unit without lights (a PC, a virtual machine);
#: auto picks lgpio where the machine has GPIO and the module, mock elsewhere
GPIO_BACKENDS = ("lgpio", "mock", "auto")
LAYOUTS = ("landscape", "portrait")
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def add_bundle_arguments(issue: argparse.ArgumentParser) -> None:
    """The ``--bundle`` options of ``device issue``."""
    issue.add_argument(
        "--bundle",
        default=None,
        metavar="FILE",
        help="write the unit's enrolment bundle (a tar file, mode 0600) for kiosk enrol "
        "or provisioning/enrol",
    )
    issue.add_argument(
        "--server-url",
        default=None,
        metavar="URL",
        help="the URL the unit reaches the server at (default: https://NAME:PORT from the "
        "server certificate's first non-loopback name)",
    )
    issue.add_argument(
        "--reader", default="auto", metavar="NAME", help='the PC/SC reader (default "auto")'
    )
    issue.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="landscape",
        help="landscape: Touch Display 800x480; portrait: Touch Display 2 720x1280",
    )
    issue.add_argument(
        "--gpio-backend",
        choices=GPIO_BACKENDS,
        default="lgpio",
        help="[gpio] backend: lgpio on a Raspberry Pi (the default), mock for a unit without "
        "lights (a PC, a virtual machine), auto for whichever the unit has",
    )
    for name, pin in GPIO_PINS.items():
        issue.add_argument(
            f"--{name.replace('_', '-')}",
            dest=f"gpio_{name}",
            type=int,
            default=pin,
            metavar="BCM",
            help=f"[gpio] {name} (default {pin})",
        )


def default_server_url(config: ServerConfig) -> str | None:
    """``https://NAME:PORT`` from the server certificate's first public name, or None."""
    try:
        cert = x509.load_pem_x509_certificate(config.paths.server_cert.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return None
    for name in names:
        if isinstance(name, x509.DNSName) and name.value not in LOOPBACK_NAMES:
            return f"https://{name.value}:{config.kiosk_port}"
        if isinstance(name, x509.IPAddress) and not name.value.is_loopback:
            host = str(name.value)
            if isinstance(name.value, ipaddress.IPv6Address):
                host = f"[{host}]"
            return f"https://{host}:{config.kiosk_port}"
    return None


def outbox_public_key_json(config: ServerConfig) -> bytes:
    """The outbox public key as ``clinic-server outbox-key`` gives it, derived from the key."""
    private, _public = outbox_key_paths(config.data_dir)
    if not private.is_file():
        raise ConfigError(f"{private} is missing: run `clinic-server outbox-key` first")
    return OutboxPrivateKey.load(private).public_key().to_json().encode("utf-8")


def _toml(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a TOML basic string uses JSON's escapes


def _setting(key: str, value: str, comment: str = "") -> str:
    line = f"{key} = {value}"
    return f"{line:<44} # {comment}" if comment else line


def kiosk_toml(
    *,
    device: str,
    server_url: str,
    reader: str,
    layout: str,
    pins: Mapping[str, int],
    gpio_backend: str = "lgpio",
) -> str:
    """A complete, commented kiosk config for one unit (the files named sit beside it)."""
    lines = [
        f"# kiosk.toml of unit {device}, from `clinic-server device issue {device} --bundle`.",
        "# Installed by `kiosk enrol` beside the files it names (owner root, group onshi-kiosk,",
        "# 0640). Relative paths are taken from this file's folder. Settings that differ later",
        "# go into drop-ins in kiosk.toml.d/*.toml beside it; `kiosk config --dump` prints",
        "# every setting in effect and where it came from.",
        "",
        "[device]",
        _setting("certificate", _toml(DEVICE_CERTIFICATE), f"the device certificate (CN {device})"),
        _setting("key", _toml(DEVICE_KEY), "its key: TLS client and request signing (0600)"),
        "",
        "[server]",
        _setting("url", _toml(server_url)),
        _setting("ca", _toml(SERVER_CA), "the clinic's TLS CA, pinned"),
        "# connect_timeout_s = 3.0",
        "# read_timeout_s = 10.0",
        "",
        "[outbox]",
        _setting("path", '"/var/lib/onshi-kiosk/outbox.db"', "on the data partition"),
        _setting("public_key", _toml(OUTBOX_KEY), "the clinic's outbox public key"),
        "# max_bytes = 67108864                       # 64 MiB",
        "# warn_fraction = 0.5",
        "",
        "[uploader]",
        _setting("state_file", '"/run/onshi-kiosk/uploader.json"', "`kiosk uploader status`"),
        "",
        "[reader]",
        _setting("name", _toml(reader), '"auto": the first PC/SC reader pcscd reports'),
        "command_timeout_s = 5.0",
        "",
        "[pin]",
        _setting("floor", "2", "ask for a PIN only with 2 or more tries left"),
        "",
        "[timeouts]",
        "idle_s = 300.0",
        _setting("pin_entry_s", "30.0", "since the last key"),
        "",
        "[card_left]",
        "remind_after_s = [5, 15, 30]",
        "repeat_s = 10",
        "",
        "[gpio]                                       # hardware.md: the pins and the wiring",
        f"backend = {_toml(gpio_backend)}",
        *(_setting(name, str(pin), "BCM") for name, pin in pins.items()),
        "",
        "[display]",
        _setting("layout", _toml(layout), "landscape: Touch Display; portrait: Touch Display 2"),
        "fullscreen = true",
        "",
        "[voice]",
        "enabled = true",
        "volume = 0.8",
        _setting("dir", '"/usr/share/onshi-kiosk/voice"', "rendered when the image is built"),
        "",
        "[heartbeat]",
        "interval_s = 60.0",
        "",
        "[result]",
        _setting("show_copay_ratio", "false", "true: the result screen shows the copay ratio"),
    ]
    return "\n".join(lines) + "\n"


def prepare_bundle(config: ServerConfig, args: argparse.Namespace) -> dict[str, bytes]:
    """The members of ``args.name``'s bundle but its certificate and key, from the server's
    data and the options; checked before the certificate is issued, so a refusal issues none.
    """
    url = args.server_url or default_server_url(config)
    if url is None:
        raise ConfigError(
            "the server certificate names no public host: give --server-url "
            "https://NAME:PORT (the name the units reach this server at)"
        )
    if not url.startswith("https://"):
        raise ConfigError(f"--server-url must be an https:// URL, not {url!r}")
    bundle = Path(args.bundle)
    if bundle.is_dir() or not (bundle.parent.is_dir() and os.access(bundle.parent, os.W_OK)):
        raise ConfigError(f"--bundle {bundle}: not a file in a folder this user can write to")
    pins = {name: getattr(args, f"gpio_{name}") for name in GPIO_PINS}
    if len(set(pins.values())) != len(pins):
        raise ConfigError(f"two GPIO options name the same pin: {pins}")
    outbox_key = outbox_public_key_json(config)
    OutboxPublicKey.from_json(outbox_key.decode("utf-8"))  # the kiosk will parse it so
    text = kiosk_toml(
        device=args.name,
        server_url=url,
        reader=args.reader,
        layout=args.layout,
        pins=pins,
        gpio_backend=args.gpio_backend,
    )
    return {
        KIOSK_CONFIG: text.encode("utf-8"),
        SERVER_CA: config.paths.server_ca.read_bytes(),
        OUTBOX_KEY: outbox_key,
    }


def write_bundle(
    path: Path,
    device: str,
    prepared: Mapping[str, bytes],
    *,
    certificate_pem: bytes,
    key_pem: bytes,
    now: dt.datetime | None = None,
) -> None:
    """Write the bundle to a temporary name beside ``path`` (0600), then rename it."""
    now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    files = {**prepared, DEVICE_CERTIFICATE: certificate_pem, DEVICE_KEY: key_pem}
    data = pack(manifest_for(device, now, files), files)
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as out:  # mkstemp makes it 0600
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ConfigError(
                f"cannot write the bundle {path}: {exc.strerror or exc}; the certificate of "
                f"{device} is issued: revoke it (`device revoke {device}`) or issue again"
            ) from None
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
