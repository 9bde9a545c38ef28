"""The update slots: what each holds, which one is committed, how the last try went."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contract.self_check import Finding, ok, warning
from kiosk.errors import UpdateError


def check_updates(describe: Callable[[], dict[str, Any]] | None = None) -> Finding:
    """``describe`` is :func:`kiosk.update.slot_status.describe` (a test may hand in another)."""
    name = "update slots"
    if describe is None:
        from kiosk.update import slot_status

        describe = slot_status.describe
    try:
        status = describe()
    except UpdateError as exc:
        return ok(name, f"no A/B slots here ({exc})")
    last = status.get("last_try")
    if last and last["outcome"] == "rolled_back":
        return warning(
            name,
            status["summary"],
            "the last update was rolled back: read `journalctl -b -1 -u onshi-kiosk` on the "
            "tried slot's boot, fix the release, and install a newer bundle",
        )
    if status["booted"] != status["committed"]:
        return warning(
            name,
            status["summary"],
            "this boot tries a new slot: onshi-update-confirm.service commits it or rolls back",
        )
    return ok(name, status["summary"])
