"""What each slot holds and how the last try went: ``kiosk update status``, ``kiosk doctor``
and the heartbeat to the clinic server (its kiosks page) all show this.

The booted slot's release is its own ``/etc/onshi-release``. The other slot's is what the
unit noted on the data partition (``/data/update/slots.json``) when it last booted that slot or
wrote a bundle into it (a slot being written is noted as holding nothing until the write ends),
or else what RAUC recorded when it installed there. A slot nothing was ever installed into
(slot B of a new unit) has no release.
"""

from __future__ import annotations

import configparser
import json
import os
from pathlib import Path
from typing import Any

from kiosk.errors import UpdateError
from kiosk.update.boot_slots import SLOTS, BootSlots, SlotStore, open_store
from kiosk.update.release import RELEASE_FILE, Release, read_release
from kiosk.update.trial import HISTORY, booted_slot, last_outcome

RAUC_STATUS = Path("/data/update/rauc/central.raucs")
SLOT_NOTES = Path("/data/update/slots.json")
#: system.conf's slot of each boot name
RAUC_SLOT = {"A": "slot.rootfs.0", "B": "slot.rootfs.1"}


def installed_releases(status_file: Path = RAUC_STATUS) -> dict[str, str]:
    """The release RAUC last installed into each slot, by boot name."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(status_file.read_text())
    except (OSError, configparser.Error):
        return {}
    found = {}
    for slot, section in RAUC_SLOT.items():
        if parser.has_section(section) and parser.has_option(section, "bundle.version"):
            version = parser.get(section, "bundle.version")
            build = parser.get(section, "bundle.build", fallback="")
            try:
                found[slot] = str(Release.parse(version, build))
            except UpdateError:
                found[slot] = version  # shown as recorded
    return found


def noted_releases(notes: Path = SLOT_NOTES) -> dict[str, str | None]:
    try:
        found = json.loads(notes.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(found, dict):
        return {}
    return {k: v for k, v in found.items() if k in SLOTS and (v is None or isinstance(v, str))}


def note_release(slot: str, release: str | None, notes: Path = SLOT_NOTES) -> None:
    """What ``slot`` holds now (None: nothing usable, it is being written); synced."""
    found = noted_releases(notes)
    found[slot] = release
    notes.parent.mkdir(parents=True, exist_ok=True)
    partial = notes.with_name(notes.name + ".new")
    with partial.open("w") as f:
        json.dump(found, f)
        f.flush()
        os.fsync(f.fileno())
    partial.replace(notes)


def describe(
    store: SlotStore | None = None,
    *,
    cmdline: Path = Path("/proc/cmdline"),
    release_file: Path = RELEASE_FILE,
    status_file: Path = RAUC_STATUS,
    history: Path = HISTORY,
    notes: Path = SLOT_NOTES,
) -> dict[str, Any]:
    if store is None:
        _kind, store = open_store()
    slots: BootSlots = store.load()
    booted = booted_slot(cmdline)
    releases: dict[str, str | None] = {**installed_releases(status_file), **noted_releases(notes)}
    releases[booted] = str(read_release(release_file))
    last = last_outcome(history)
    described: dict[str, Any] = {
        "booted": booted,
        "committed": slots.committed,
        "trying": slots.trying,
        "slots": {
            slot: {"release": releases.get(slot), "state": slots.state(slot)} for slot in SLOTS
        },
        "last_try": None if last is None else last.__dict__,
    }
    parts = []
    for slot in SLOTS:
        role = "booted" if slot == booted else "other"
        mark = ", committed" if slot == slots.committed else ""
        mark += ", tried at the next boot" if slot == slots.trying else ""
        parts.append(f"{slot} ({role}{mark}): {releases.get(slot) or 'empty'}")
    summary = "; ".join(parts)
    if last is not None:
        summary += f"; last try: slot {last.slot} {last.release} {last.outcome} ({last.reason})"
    described["summary"] = summary
    return described


#: The summary any process may read (the kiosk runs as its own user; the boot's state and RAUC's
#: status are root's): written by ``kiosk update confirm`` at every boot and after each install.
PUBLIC = Path("/run/onshi-update/status.json")


def heartbeat_fields(status: dict[str, Any]) -> tuple[str, str | None]:
    """``(slots, last_update)`` for the heartbeat (:mod:`contract.heartbeat`)."""
    parts = []
    for slot, facts in status["slots"].items():
        marks = [
            mark
            for mark, on in (
                ("committed", slot == status["committed"]),
                ("booted", slot == status["booted"]),
                ("to try", slot == status["trying"]),
            )
            if on
        ]
        parts.append(" ".join([slot, facts["release"] or "empty", ", ".join(marks)]).strip())
    last = status["last_try"]
    update = None
    if last is not None:
        update = (
            f"{last['slot']} {last['release']} {last['outcome']} {last['at']}: {last['reason']}"
        )
    return " · ".join(parts), update


def publish(status: dict[str, Any], public: Path = PUBLIC) -> None:
    """The status and its heartbeat fields, readable by the kiosk's user."""
    slots, last_update = heartbeat_fields(status)
    public.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    partial = public.with_name(public.name + ".new")
    partial.write_text(
        json.dumps({**status, "heartbeat": {"slots": slots, "last_update": last_update}})
    )
    partial.chmod(0o644)
    partial.replace(public)


def published(public: Path = PUBLIC) -> tuple[str | None, str | None]:
    """What the last :func:`publish` said for the heartbeat; ``(None, None)`` on a unit
    without A/B slots (nothing published)."""
    try:
        fields = json.loads(public.read_text())["heartbeat"]
        return fields.get("slots"), fields.get("last_update")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None, None
