"""Which root slot boots: the A/B decision of the unit's updates, kept where the boot reads it.

A unit has two root slots, A and B. One is *committed*: it boots every time. After an update
is written to the other slot, that slot is *tried*: it boots on the next boot only, and the
boot loader forgets the try before it boots it. The tried slot becomes the committed one only
when the kiosk on it proves itself (:mod:`kiosk.update.trial`); if it never does (a hang, a
crash, a kernel that does not come up), the boot after falls back to the committed slot by
itself. This is the Raspberry Pi firmware's ``tryboot``; the boot test's virtual machine gets
the same rule from a GRUB script (provisioning/boot/grub.cfg).

:class:`BootSlots` is the rule, pure; the stores keep it where each boot reads it:

- :class:`GrubEnvironment`: GRUB's environment block beside the GRUB script (amd64 image);
- :class:`PiAutoboot`: the Raspberry Pi's ``autoboot.txt`` (``tryboot_a_b=1``) and a marker
  telling ``kiosk update reboot`` to reboot with the tryboot flag.

RAUC reaches them through ``kiosk update backend`` (its custom boot-loader backend).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from kiosk.errors import BootSlotError

SLOTS = ("A", "B")


def _check_slot(slot: str) -> str:
    if slot not in SLOTS:
        raise BootSlotError(f"unknown slot {slot!r}: the slots are A and B")
    return slot


@dataclass(frozen=True)
class BootSlots:
    """The committed slot, and the slot to try once on the next boot (if any)."""

    committed: str = "A"
    trying: str | None = None

    def __post_init__(self) -> None:
        _check_slot(self.committed)
        if self.trying is not None:
            _check_slot(self.trying)

    def primary(self) -> str:
        """The slot the next boot starts."""
        return self.trying or self.committed

    def state(self, slot: str) -> str:
        """``good`` for the committed slot and a slot waiting to be tried, else ``bad``."""
        return "good" if _check_slot(slot) in (self.committed, self.trying) else "bad"

    def try_next(self, slot: str) -> BootSlots:
        """Boot ``slot`` once on the next boot (RAUC's ``set-primary`` after an install)."""
        if _check_slot(slot) == self.committed:
            return replace(self, trying=None)
        return replace(self, trying=slot)

    def mark_good(self, slot: str) -> BootSlots:
        """``slot`` proved itself: it boots from now on."""
        return BootSlots(committed=_check_slot(slot), trying=None)

    def mark_bad(self, slot: str) -> BootSlots:
        """``slot`` must not boot: a pending try of it is dropped. The committed slot cannot
        be marked bad (the other slot may be empty or half-written): commit another first."""
        if _check_slot(slot) == self.committed:
            raise BootSlotError(
                f"slot {slot} is the committed slot; it stays until another slot proves itself"
            )
        return replace(self, trying=None) if self.trying == slot else self


class SlotStore(Protocol):
    """Where a boot reads the slot state."""

    def load(self) -> BootSlots: ...

    def save(self, slots: BootSlots) -> None: ...


#: Where each kind of unit keeps it: the amd64 image's GRUB block on the boot partition, the
#: Raspberry Pi's autoboot.txt on its first partition
GRUB_ENV = Path("/boot/firmware/EFI/onshi/bootslot.env")
PI_AUTOBOOT = Path("/boot/autoboot")


def open_store() -> tuple[str, SlotStore]:
    """Where this unit's boot reads the A/B state: ``("pi", ...)`` or ``("grub", ...)``."""
    if (PI_AUTOBOOT / "autoboot.txt").exists():
        return "pi", PiAutoboot(PI_AUTOBOOT)
    if GRUB_ENV.exists():
        return "grub", GrubEnvironment(GRUB_ENV)
    raise BootSlotError(f"no A/B boot here: neither {PI_AUTOBOOT}/autoboot.txt nor {GRUB_ENV}")


# --- GRUB's environment block (the amd64 image) ----------------------------------------------

ENV_BLOCK_SIZE = 1024
ENV_HEADER = b"# GRUB Environment Block\n"


class GrubEnvironment:
    """``ONSHI_SLOT`` (committed) and ``ONSHI_TRY`` in a GRUB environment block.

    The block is a 1024-byte file: a header line, ``NAME=VALUE`` lines, ``#`` padding. GRUB
    writes it in place (its ``save_env`` clears the try before booting the tried slot), so this
    writes it in place too, the same size, and syncs it: no rename, no new clusters. Other
    variables in it (``ONSHI_KERNEL_ARGS``) are kept.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, str]:
        try:
            block = self.path.read_bytes()
        except OSError as exc:
            raise BootSlotError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        if len(block) != ENV_BLOCK_SIZE or not block.startswith(ENV_HEADER):
            raise BootSlotError(f"{self.path} is not a GRUB environment block ({len(block)} bytes)")
        values: dict[str, str] = {}
        for line in block[len(ENV_HEADER) :].split(b"\n"):
            if not line or line.startswith(b"#"):
                continue
            name, sep, value = line.decode("utf-8", "replace").partition("=")
            if not sep:
                raise BootSlotError(f"{self.path}: a line without '=': {name[:40]!r}")
            values[name] = value
        return values

    def load(self) -> BootSlots:
        values = self._read()
        return BootSlots(
            committed=values.get("ONSHI_SLOT") or "A", trying=values.get("ONSHI_TRY") or None
        )

    def save(self, slots: BootSlots) -> None:
        values = self._read()
        values["ONSHI_SLOT"] = slots.committed
        values["ONSHI_TRY"] = slots.trying or ""
        block = render_env_block(values)
        try:
            with self.path.open("r+b") as f:
                f.write(block)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise BootSlotError(f"cannot write {self.path}: {exc.strerror or exc}") from exc


def render_env_block(values: dict[str, str]) -> bytes:
    """A GRUB environment block holding ``values``."""
    body = ENV_HEADER + b"".join(f"{k}={v}\n".encode() for k, v in values.items())
    if len(body) > ENV_BLOCK_SIZE or any("\n" in k + v for k, v in values.items()):
        raise BootSlotError("the boot environment does not fit its 1024-byte block")
    return body + b"#" * (ENV_BLOCK_SIZE - len(body))


# --- the Raspberry Pi's autoboot.txt ---------------------------------------------------------

#: The boot partition of each slot (each slot has its own: firmware, kernel, cmdline.txt)
PI_BOOT_PARTITION = {"A": 2, "B": 3}
TRYBOOT_MARKER = "onshi-tryboot"


class PiAutoboot:
    """The Raspberry Pi firmware's A/B boot: ``autoboot.txt`` on the first partition.

    ``[all] boot_partition`` is the committed slot's boot partition; ``[tryboot]
    boot_partition`` the other's, which the firmware boots when the reboot carries the tryboot
    flag (``reboot "0 tryboot"``), once: the flag does not survive the next reset. A pending
    try is the marker file beside autoboot.txt; ``kiosk update reboot`` turns it into the flag.
    """

    def __init__(self, folder: Path) -> None:
        self.autoboot = folder / "autoboot.txt"
        self.marker = folder / TRYBOOT_MARKER

    def load(self) -> BootSlots:
        try:
            text = self.autoboot.read_text()
        except OSError as exc:
            raise BootSlotError(f"cannot read {self.autoboot}: {exc.strerror or exc}") from exc
        section, committed = "", None
        for raw in text.splitlines():
            line = raw.strip()
            if re.fullmatch(r"\[[a-z0-9_]+\]", line):
                section = line
            elif section == "[all]" and line.startswith("boot_partition="):
                committed = line.split("=", 1)[1]
        by_partition = {str(p): slot for slot, p in PI_BOOT_PARTITION.items()}
        if committed not in by_partition:
            raise BootSlotError(f"{self.autoboot}: no [all] boot_partition=2 or =3")
        trying = self.marker.read_text().strip() if self.marker.exists() else None
        return BootSlots(committed=by_partition[committed], trying=trying or None)

    def save(self, slots: BootSlots) -> None:
        other = "B" if slots.committed == "A" else "A"
        text = render_autoboot(slots.committed, other)
        try:
            _write_synced(self.autoboot, text)
            if slots.trying:
                _write_synced(self.marker, slots.trying + "\n")
            else:
                self.marker.unlink(missing_ok=True)
        except OSError as exc:
            raise BootSlotError(f"cannot write {self.autoboot}: {exc.strerror or exc}") from exc


def render_autoboot(committed: str, other: str) -> str:
    return (
        "# Onshi Kiosk: the committed slot boots; the other only on a reboot with the\n"
        "# tryboot flag (kiosk update reboot), once.\n"
        "[all]\ntryboot_a_b=1\n"
        f"boot_partition={PI_BOOT_PARTITION[committed]}\n"
        "[tryboot]\n"
        f"boot_partition={PI_BOOT_PARTITION[other]}\n"
    )


def _write_synced(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".new")
    with partial.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    partial.replace(path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
