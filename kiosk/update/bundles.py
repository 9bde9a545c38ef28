"""An update bundle, checked before anything is written: RAUC's ``info`` and the payload.

``rauc info`` checks the bundle's signature against the unit's keyring (the maintainer's update
CA, from RAUC's system.conf) and prints the signed manifest: the compatible string, the
release, each image's size and SHA-256. A verity bundle's payload is only checked block by
block while it is being installed, so a damaged payload would be found half-way through writing
the other slot; :func:`check_payload` reads it whole first (``unsquashfs -cat``) and compares
it with the signed checksum, so a damaged bundle is refused with nothing written.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from kiosk.errors import UpdateError, UpdateRefused
from kiosk.update.release import Release

RAUC = "rauc"
UNSQUASHFS = "unsquashfs"
#: What RAUC's messages say, and the reason a refusal gets
_REASONS = (
    ("Signature size is 0", "signature"),  # no signature at all
    ("signature", "signature"),
    ("Signature size", "truncated"),
    ("exceeds bundle size", "truncated"),
    ("too small", "truncated"),
    ("Invalid bundle format", "unreadable"),
    ("No such file", "unreadable"),
)


@dataclass(frozen=True)
class ImageInfo:
    slot_class: str
    filename: str
    size: int
    sha256: str


@dataclass(frozen=True)
class BundleInfo:
    """What a bundle's signed manifest says."""

    compatible: str
    release: Release
    images: tuple[ImageInfo, ...]


def read_info(bundle: Path, *, conf: Path | None = None) -> BundleInfo:
    """``rauc info``: the signature checked, the manifest read; refused with the reason."""
    if not bundle.is_file():
        raise UpdateRefused("unreadable", f"{bundle}: no such file")
    argv = [RAUC, "info", "--output-format=json", str(bundle)]
    if conf is not None:
        argv[1:1] = ["--conf", str(conf)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    if done.returncode != 0:
        message = _rauc_error(done.stderr)
        reason = next((r for key, r in _REASONS if key in message), "unreadable")
        raise UpdateRefused(reason, f"{bundle.name}: {message}")
    try:
        manifest = json.loads(done.stdout)
        images = tuple(
            ImageInfo(
                slot_class=slot_class,
                filename=image["filename"],
                size=int(image["size"]),
                sha256=image["checksum"],
            )
            for entry in manifest["images"]
            for slot_class, image in entry.items()
        )
        return BundleInfo(
            compatible=manifest["compatible"],
            release=Release.parse(manifest["version"], manifest.get("build") or ""),
            images=images,
        )
    except (ValueError, KeyError, TypeError, AttributeError, UpdateError) as exc:
        raise UpdateRefused(
            "unreadable", f"{bundle.name}: its manifest is not usable: {exc}"
        ) from exc


def check_payload(bundle: Path, info: BundleInfo) -> None:
    """Each image in the bundle read whole and compared with its signed SHA-256."""
    for image in info.images:
        digest = hashlib.sha256()
        size = 0
        with subprocess.Popen(
            [UNSQUASHFS, "-cat", str(bundle), image.filename],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as reader:
            assert reader.stdout is not None
            for block in iter(partial(reader.stdout.read, 1 << 20), b""):
                digest.update(block)
                size += len(block)
            errors = reader.stderr.read().decode(errors="replace") if reader.stderr else ""
        if reader.returncode != 0 or size != image.size or digest.hexdigest() != image.sha256:
            detail = errors.strip().splitlines()[-1] if errors.strip() else "checksum differs"
            raise UpdateRefused(
                "signature",
                f"{bundle.name}: {image.filename} is not what was signed ({detail})",
            )


def _rauc_error(stderr: str) -> str:
    """RAUC's own error line, without its progress messages."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "rauc-Message" not in ln]
    return (errors or lines or ["rauc failed without a message"])[-1]
