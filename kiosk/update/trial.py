"""The try of a new slot: committed when the kiosk proves itself, else rolled back.

``kiosk update confirm`` runs at every boot (onshi-update-confirm.service). On a boot of the
committed slot it only notes the slot's release. On the boot that tries a slot, it waits up to
``within``
seconds for the kiosk to be READY (its unit active: the kiosk sends READY=1 once its screen,
reader and identity are up) and for ``kiosk doctor`` to find nothing failed in the slot
itself; then the slot is committed (``rauc status mark-good booted``). Otherwise it is marked
bad and the unit reboots into the committed slot, which the boot chooses by itself: the try was
forgotten before this boot began. Either way the outcome is written to the data partition's
update history (the unit's doctor and its heartbeat to the clinic server show it) and to the
journal (``UPDATE_OUTCOME``).

:func:`decide` is the rule, pure; ``kiosk.update.cli.run_confirm`` runs it against the unit.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from contract.self_check import Finding, State

log = logging.getLogger(__name__)

HISTORY = Path("/data/update/history.jsonl")
#: Written once the try is decided: onshi-update-deadline.service then leaves the boot alone
DECIDED = Path("/run/onshi-update/decided")
#: Checks about the world around the unit, not the slot: reported, never a reason to roll back
#: (a clinic's NTP server being down during an update must not undo a good update).
OUTSIDE_THE_SLOT = frozenset({"clock"})


@dataclass(frozen=True)
class Outcome:
    slot: str
    release: str
    outcome: str  # committed | rolled_back | nothing_to_try
    reason: str
    at: str
    waited_s: float


def decide(ready: bool, findings: Sequence[Finding]) -> tuple[bool, str]:
    """Commit the tried slot? And why (or why not), in one line."""
    if not ready:
        return False, "the kiosk did not become READY"
    bad = [f for f in findings if f.state is State.FAILED and f.name not in OUTSIDE_THE_SLOT]
    if bad:
        first = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        return False, f"kiosk doctor: {first.name}: {first.detail}{more}"
    return True, "READY and kiosk doctor passed"


def booted_slot(cmdline: Path = Path("/proc/cmdline")) -> str:
    """The slot this boot started (``rauc.slot=`` on the kernel's command line)."""
    for word in cmdline.read_text().split():
        if word.startswith("rauc.slot="):
            return word.split("=", 1)[1]
    return "A"  # an image without slots boots its one root


def unit_active(unit: str = "onshi-kiosk.service") -> bool:
    done = subprocess.run(
        ["systemctl", "show", "-p", "ActiveState", "--value", unit],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() == "active"


def wait_until(
    test: Callable[[], bool],
    within_s: float,
    *,
    poll_s: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    deadline = clock() + within_s
    while True:
        if test():
            return True
        if clock() >= deadline:
            return False
        sleep(poll_s)


def record(outcome: Outcome, history: Path = HISTORY) -> None:
    """One JSON line appended and synced: the outcome survives the reboot that follows."""
    history.parent.mkdir(parents=True, exist_ok=True)
    with history.open("a") as f:
        f.write(json.dumps(asdict(outcome), ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def note_decided(outcome: Outcome, decided: Path = DECIDED) -> None:
    decided.parent.mkdir(parents=True, exist_ok=True)
    decided.write_text(outcome.outcome + "\n")


def last_outcome(history: Path = HISTORY) -> Outcome | None:
    try:
        lines = history.read_text().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return Outcome(**json.loads(line))
        except (ValueError, TypeError):
            continue  # a line cut by a power loss: the one before it still counts
    return None


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
