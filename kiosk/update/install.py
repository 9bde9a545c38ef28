"""``kiosk update install``: a bundle checked in full, then written to the other slot.

In order, each refusal leaving everything as it was:

1. a URL is downloaded to the data partition first (``.partial``, renamed when complete);
2. the unit is not in the middle of trying a slot (finish or roll back that first);
3. ``rauc info``: the signature (the maintainer's update CA only), the signed manifest;
4. the compatible string is this unit's (``onshi-kiosk-amd64``, ``onshi-kiosk-arm64``...);
5. the release is newer than the running one (or ``--force``);
6. the payload is read whole and matches its signed checksum.

Only then ``rauc install`` writes the other slot and asks the boot to try it once
(:mod:`kiosk.update.boot_slots`); the next boot is the try (:mod:`kiosk.update.trial`).
"""

from __future__ import annotations

import configparser
import logging
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kiosk.errors import UpdateError, UpdateRefused
from kiosk.update.boot_slots import SLOTS, BootSlots
from kiosk.update.bundles import RAUC, BundleInfo, check_payload, read_info
from kiosk.update.release import Release
from kiosk.update.slot_status import note_release

log = logging.getLogger(__name__)

SYSTEM_CONF = Path("/etc/rauc/system.conf")
DOWNLOADS = Path("/data/update/incoming")


@dataclass(frozen=True)
class Unit:
    """What the checks compare a bundle with: the running release, the boot's slot state,
    the slot this boot started."""

    running: Release
    slots: BootSlots
    booted: str


@dataclass(frozen=True)
class Installed:
    info: BundleInfo
    seconds: float


def compatible_of(conf: Path = SYSTEM_CONF) -> str:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with conf.open() as f:
            parser.read_file(f)
        return parser["system"]["compatible"]
    except (OSError, KeyError, configparser.Error) as exc:
        raise UpdateError(f"{conf}: no [system] compatible ({exc})") from exc


def check_bundle(
    bundle: Path, unit: Unit, *, conf: Path = SYSTEM_CONF, force: bool = False
) -> BundleInfo:
    """Every check before writing; :class:`UpdateRefused` with the reason when one fails."""
    running = unit.running
    if unit.booted != unit.slots.committed:
        raise UpdateRefused(
            "trial",
            f"this boot is a try of slot {unit.booted}; wait until it is committed or rolled back",
        )
    info = read_info(bundle, conf=conf)
    ours = compatible_of(conf)
    if info.compatible != ours:
        raise UpdateRefused(
            "compatible", f"{bundle.name} is for {info.compatible!r}, this unit is {ours!r}"
        )
    if info.release <= running and not force:
        word = "the same as" if info.release == running else "older than"
        raise UpdateRefused(
            "older",
            f"{bundle.name} is release {info.release}, {word} the running {running} "
            "(--force installs it anyway)",
        )
    check_payload(bundle, info)
    return info


def install(
    bundle: Path,
    unit: Unit,
    *,
    conf: Path = SYSTEM_CONF,
    force: bool = False,
    progress: Callable[[str], None] = log.info,
    note: Callable[[str, str | None], None] = note_release,
) -> Installed:
    started = time.monotonic()
    info = check_bundle(bundle, unit, conf=conf, force=force)
    progress(f"{bundle.name}: release {info.release} for {info.compatible}: checked; writing")
    other = next(slot for slot in SLOTS if slot != unit.booted)
    note(other, None)  # being written: it holds nothing usable until RAUC is done
    done = subprocess.run(
        [RAUC, "install", str(bundle)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no message"]
        raise UpdateError(f"rauc install failed: {tail[0]}")
    note(other, str(info.release))
    return Installed(info, time.monotonic() - started)


def download(url: str, folder: Path = DOWNLOADS, *, timeout_s: float = 60.0) -> Path:
    """The bundle at ``url``, on the data partition; a partial download never looks whole."""
    import httpx

    folder.mkdir(parents=True, exist_ok=True)
    name = url.rstrip("/").rsplit("/", 1)[-1] or "bundle.raucb"
    target = folder / name
    partial = target.with_name(target.name + ".partial")
    try:
        with httpx.stream("GET", url, timeout=timeout_s, follow_redirects=False) as answer:
            if answer.status_code != 200:
                raise UpdateRefused("download", f"{url}: HTTP {answer.status_code}")
            with partial.open("wb") as f:
                for chunk in answer.iter_bytes(1 << 20):
                    f.write(chunk)
    except httpx.HTTPError as exc:
        partial.unlink(missing_ok=True)
        raise UpdateRefused("download", f"{url}: {type(exc).__name__}: {exc}") from exc
    except OSError as exc:  # the data partition full or failing
        partial.unlink(missing_ok=True)
        raise UpdateRefused("download", f"{url}: cannot keep it: {exc.strerror or exc}") from exc
    partial.replace(target)
    return target
