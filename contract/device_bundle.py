"""The enrolment bundle: everything one kiosk unit needs, in one uncompressed tar file.

Written by ``clinic-server device issue NAME --bundle FILE`` (:mod:`clinic.device_bundle`),
read by ``kiosk enrol`` (:mod:`kiosk.enrolment`). Exactly these members, each a regular file
at the top level of the archive::

    bundle.json        {"format": 1, "device": NAME, "created": ISO time,
                        "sha256": {member: hex digest, ...}}  (every other member)
    kiosk.toml         the unit's complete kiosk config; paths relative to its own folder
    device.pem         the device certificate (its CN is the device name)
    device.key.pem     its private key
    server-ca.pem      the clinic server's TLS CA
    outbox-key.json    the outbox public key the kiosk seals its logs to

The bundle holds a private key: it is written with mode 0600 and erased from wherever it was
carried once the unit has it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass

from contract.errors import ConfigError

FORMAT = 1
MANIFEST = "bundle.json"
KIOSK_CONFIG = "kiosk.toml"
DEVICE_CERTIFICATE = "device.pem"
DEVICE_KEY = "device.key.pem"
SERVER_CA = "server-ca.pem"
OUTBOX_KEY = "outbox-key.json"
#: The members besides the manifest, in the order they are written.
FILES = (KIOSK_CONFIG, DEVICE_CERTIFICATE, DEVICE_KEY, SERVER_CA, OUTBOX_KEY)
MEMBERS = frozenset({MANIFEST, *FILES})
#: Mode of each member inside the archive (the key is private).
MEMBER_MODES = {name: 0o600 if name == DEVICE_KEY else 0o644 for name in MEMBERS}
#: Largest member and largest archive accepted: a real bundle is a few kilobytes.
MAX_MEMBER_BYTES = 64 * 1024
MAX_BUNDLE_BYTES = 1024 * 1024


class BundleError(ConfigError):
    """An enrolment bundle that cannot be used: unreadable, incomplete or inconsistent."""

    code = "enrolment.bundle"


@dataclass(frozen=True)
class Manifest:
    device: str
    created: dt.datetime
    sha256: Mapping[str, str]

    def to_json(self) -> bytes:
        doc = {
            "format": FORMAT,
            "device": self.device,
            "created": self.created.isoformat(timespec="seconds"),
            "sha256": dict(sorted(self.sha256.items())),
        }
        return (json.dumps(doc, indent=1) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BundleError(f"{MANIFEST} is not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise BundleError(f"{MANIFEST} is not a JSON object")
        if doc.get("format") != FORMAT:
            raise BundleError(f"{MANIFEST}: format {doc.get('format')!r} is not {FORMAT}")
        device, created, sha256 = doc.get("device"), doc.get("created"), doc.get("sha256")
        if not isinstance(device, str) or not device:
            raise BundleError(f"{MANIFEST}: device must be the unit's name")
        try:
            when = dt.datetime.fromisoformat(created) if isinstance(created, str) else None
        except ValueError:
            when = None
        if when is None or when.tzinfo is None:
            raise BundleError(f"{MANIFEST}: created must be an ISO time with its offset")
        if not isinstance(sha256, dict) or set(sha256) != set(FILES):
            raise BundleError(f"{MANIFEST}: sha256 must list exactly {', '.join(FILES)}")
        for name, digest in sha256.items():
            if not isinstance(digest, str) or len(digest) != 64:
                raise BundleError(f"{MANIFEST}: the sha256 of {name} is not 64 hex digits")
        return cls(device, when, dict(sha256))


def manifest_for(device: str, created: dt.datetime, files: Mapping[str, bytes]) -> Manifest:
    """The manifest of ``files`` (exactly :data:`FILES`)."""
    if set(files) != set(FILES):
        raise ValueError(f"a bundle holds exactly {', '.join(FILES)}")
    return Manifest(device, created, {n: hashlib.sha256(d).hexdigest() for n, d in files.items()})


def check_hashes(manifest: Manifest, files: Mapping[str, bytes]) -> None:
    """Raise :class:`BundleError` naming the first member whose digest is not the manifest's."""
    for name in FILES:
        if hashlib.sha256(files[name]).hexdigest() != manifest.sha256[name]:
            raise BundleError(f"{name} does not match its sha256 in {MANIFEST}")


def pack(manifest: Manifest, files: Mapping[str, bytes]) -> bytes:
    """The bundle as tar bytes: the manifest first, then :data:`FILES` in order."""
    out = io.BytesIO()
    mtime = int(manifest.created.timestamp())
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [(MANIFEST, manifest.to_json()), *((n, files[n]) for n in FILES)]:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), MEMBER_MODES[name], mtime
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def unpack(data: bytes) -> tuple[Manifest, dict[str, bytes]]:
    """Read a bundle's bytes, refusing anything but the expected regular files.

    Refused: compression, links, devices, folders, paths, unknown or repeated members,
    oversized members, a truncated archive, a missing member, a digest that does not match.
    Nothing is written anywhere: the members are read into memory.
    """
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(f"the bundle is {len(data)} bytes, more than {MAX_BUNDLE_BYTES}")
    contents: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                name = member.name
                if name not in MEMBERS:
                    raise BundleError(
                        f"unexpected member {name!r} (a bundle holds only "
                        f"{', '.join(sorted(MEMBERS))})"
                    )
                if not member.isreg():
                    raise BundleError(f"member {name} is not a regular file")
                if name in contents:
                    raise BundleError(f"member {name} appears twice")
                if member.size > MAX_MEMBER_BYTES:
                    raise BundleError(
                        f"member {name} is {member.size} bytes, more than {MAX_MEMBER_BYTES}"
                    )
                stream = tar.extractfile(member)
                body = stream.read() if stream is not None else b""
                if len(body) != member.size:
                    raise BundleError(f"member {name} is cut short: the bundle is truncated")
                contents[name] = body
    except tarfile.TarError as exc:
        if any(word in str(exc) for word in ("truncated", "unexpected end", "empty file")):
            raise BundleError(f"the bundle is truncated ({exc})") from None
        raise BundleError(f"not a readable uncompressed tar file ({exc})") from None
    except EOFError:
        raise BundleError("the bundle is truncated") from None
    missing = sorted(MEMBERS - set(contents))
    if missing:
        raise BundleError(f"the bundle lacks {', '.join(missing)} (truncated or incomplete)")
    manifest = Manifest.from_json(contents.pop(MANIFEST))
    check_hashes(manifest, contents)
    return manifest, contents
