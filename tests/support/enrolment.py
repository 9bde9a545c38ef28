"""Enrolment bundles for the tests: issued by the real ``clinic-server device issue --bundle``
from a real data directory, and changed member by member to make broken ones."""

from __future__ import annotations

import io
import secrets
import tarfile
from pathlib import Path

from clinic.cli import initialise, main
from contract.device_bundle import MANIFEST, Manifest, manifest_for, pack

PUBLIC_NAME = "clinic-server.lan"


def clinic_data_dir(root: Path) -> Path:
    """An initialised clinic data directory (SQLite) whose certificate names PUBLIC_NAME."""
    data = root / "clinic"
    initialise(data, admin="admin", password=secrets.token_urlsafe(16), hostnames=[PUBLIC_NAME])
    return data


def issue_bundle(data_dir: Path, name: str, bundle: Path, *options: str) -> int:
    """``clinic-server --data-dir DATA device issue NAME --bundle FILE OPTIONS``."""
    return main(
        ["--data-dir", str(data_dir), "device", "issue", name, "--bundle", str(bundle), *options]
    )


def members(bundle: bytes) -> dict[str, bytes]:
    """Every member of a bundle, read without any check."""
    with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isreg()}  # type: ignore[union-attr]


def rebuilt(bundle: bytes, *, rehash: bool = True, **changes: bytes) -> bytes:
    """The bundle with members replaced (``device_key_pem=...``: dots and dashes as ``_``);
    its manifest recomputed, or kept as it was (``rehash=False``: the digests no longer hold).
    """
    files = members(bundle)
    manifest = Manifest.from_json(files.pop(MANIFEST))
    names = {n.replace(".", "_").replace("-", "_"): n for n in files}
    for key, data in changes.items():
        files[names[key]] = data
    if rehash:
        manifest = manifest_for(manifest.device, manifest.created, files)
    return pack(manifest, files)


def with_raw_member(bundle: bytes, info: tarfile.TarInfo, data: bytes = b"") -> bytes:
    """The bundle with one more member written as given (a link, a path, a device...)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:") as source:
            for member in source:
                tar.addfile(member, source.extractfile(member))
        info.size = len(data) if info.isreg() else 0
        tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()
