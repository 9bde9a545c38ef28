"""Who used the CPU during a bench's measured window: the server, the database, the kiosks.

On a small machine every party of a bench shares the same cores: the simulated kiosks (which
in a clinic run on their own units), the server, and PostgreSQL (which in a chain runs on its
own host). Throughput there is bounded by the CPU each verification costs all of them
together, so the bench reports that cost per party: CPU milliseconds per verification, read
from ``/proc`` (Linux) at the start and the end of the window, with how busy the whole
machine was.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


def _ticks_per_s() -> int:
    return int(os.sysconf("SC_CLK_TCK"))


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (0 when it is gone)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / _ticks_per_s()


def children_of(pid: int) -> list[int]:
    """Every descendant of ``pid`` (Linux's per-thread ``children`` lists)."""
    found: list[int] = []
    stack = [pid]
    while stack:
        parent = stack.pop()
        for task in (PROC / str(parent) / "task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            found += kids
            stack += kids
    return found


def postgres_pids() -> list[int]:
    """Every PostgreSQL server process on this machine (the bench's database server)."""
    pids: list[int] = []
    for entry in PROC.glob("[0-9]*"):
        try:
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if name == "postgres":
            pids.append(int(entry.name))
    return pids


def machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    first = (PROC / "stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in first[:8]]  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    return (sum(values) - idle) / _ticks_per_s(), sum(values) / _ticks_per_s()


@dataclass(frozen=True)
class CpuSnapshot:
    by_party: dict[str, float]
    busy_s: float
    total_s: float


def snapshot(parties: Mapping[str, Iterable[int]]) -> CpuSnapshot:
    """CPU seconds so far of each party's processes, and of the machine."""
    busy, total = machine_busy_s()
    return CpuSnapshot(
        {name: sum(process_cpu_s(p) for p in pids) for name, pids in parties.items()},
        busy,
        total,
    )


def share(before: CpuSnapshot, after: CpuSnapshot, verifications: int) -> dict[str, float]:
    """CPU ms per verification of each party, and ``machine_busy_pct`` of all cores."""
    figures = {
        f"{name}_ms": round(1000 * (after.by_party[name] - spent) / max(1, verifications), 2)
        for name, spent in before.by_party.items()
    }
    elapsed = after.total_s - before.total_s
    figures["machine_busy_pct"] = (
        round(100 * (after.busy_s - before.busy_s) / elapsed, 1) if elapsed > 0 else 0.0
    )
    return figures


def available() -> bool:
    return (PROC / "self" / "stat").is_file()
