"""The release a root slot carries, and which of two releases is newer.

Every root file system the image build makes says what it is in ``/etc/onshi-release``
(``ONSHI_VERSION``: the project's version; ``ONSHI_BUILD``: the build's source date, seconds
since 1970), and every update bundle says the same in its manifest (``version``, ``build``).
One release is newer than another when its version is, or, for the same version, its build.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from kiosk.errors import UpdateError

RELEASE_FILE = Path("/etc/onshi-release")
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True, order=True)
class Release:
    """A version (``major.minor.patch``) and a build number; ordered oldest first."""

    version: tuple[int, int, int]
    build: int

    @classmethod
    def parse(cls, version: str, build: str | int) -> Release:
        match = _VERSION.fullmatch(version.strip())
        if not match:
            raise UpdateError(f"not a release version (major.minor.patch): {version!r}")
        try:
            number = int(build)
        except (TypeError, ValueError):
            raise UpdateError(f"not a build number: {build!r}") from None
        major, minor, patch = (int(g) for g in match.groups())
        return cls((major, minor, patch), number)

    def __str__(self) -> str:
        return "{}.{}.{}".format(*self.version) + f" (build {self.build})"


def read_release(path: Path = RELEASE_FILE) -> Release:
    """The running slot's release, from its ``/etc/onshi-release``."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UpdateError(f"cannot read {path}: {exc.strerror or exc}") from exc
    values = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            values[name.strip()] = value.strip().strip('"')
    if "ONSHI_VERSION" not in values or "ONSHI_BUILD" not in values:
        raise UpdateError(f"{path} has no ONSHI_VERSION and ONSHI_BUILD")
    return Release.parse(values["ONSHI_VERSION"], values["ONSHI_BUILD"])


def render_release(version: str, build: int) -> str:
    Release.parse(version, build)  # refuse what could not be read back
    return f'ONSHI_VERSION="{version}"\nONSHI_BUILD="{build}"\n'
