"""What a self-check found, and how ``kiosk doctor`` and ``clinic-server doctor`` print it.

One line per check (``ok``/``warning``/``failed``, the name, what was seen, and after ``->``
what to do), or with ``--json`` a list of ``{name, state, detail, advice}``: the same shape
from both programs, so a maintainer's scripts read either.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    OK = "ok"
    WARNING = "warning"
    FAILED = "failed"


@dataclass(frozen=True)
class Finding:
    """One check's verdict: what it saw (``detail``) and what to do about it (``advice``)."""

    name: str
    state: State
    detail: str
    advice: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "state": self.state.value,
            "detail": self.detail,
            "advice": self.advice,
        }


def ok(name: str, detail: str) -> Finding:
    return Finding(name, State.OK, detail)


def warning(name: str, detail: str, advice: str) -> Finding:
    return Finding(name, State.WARNING, detail, advice)


def failed(name: str, detail: str, advice: str) -> Finding:
    return Finding(name, State.FAILED, detail, advice)


def exit_status(findings: Sequence[Finding]) -> int:
    """1 when anything failed, else 0 (warnings do not fail)."""
    return 1 if any(f.state is State.FAILED for f in findings) else 0


def to_text(findings: Sequence[Finding]) -> str:
    """One line per check (``ok``/``warning``/``failed``, name, detail), the advice after."""
    width = max((len(f.name) for f in findings), default=0)
    lines = []
    for f in findings:
        line = f"{f.state.value:<8} {f.name:<{width}}  {f.detail}"
        if f.advice:
            line += f" -> {f.advice}"
        lines.append(line)
    counts = {s: sum(1 for f in findings if f.state is s) for s in State}
    lines.append(
        f"{counts[State.OK]} ok, {counts[State.WARNING]} warning(s), {counts[State.FAILED]} failed"
    )
    return "\n".join(lines)


def to_json(findings: Sequence[Finding]) -> str:
    return json.dumps([f.to_json() for f in findings], ensure_ascii=False, indent=2)
