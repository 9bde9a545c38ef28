"""The bench's CPU accounting (testbed.bench.cpu_share) reads the real /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from testbed.bench import cpu_share


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_a_process_cpu_time_grows_as_it_works():
    before = cpu_share.process_cpu_s(os.getpid())
    _burn(0.3)
    after = cpu_share.process_cpu_s(os.getpid())
    assert 0.2 <= after - before <= 1.0
    assert cpu_share.process_cpu_s(2**22 + 12345) == 0.0, "a process that is gone counts 0"


def test_the_children_of_a_process_include_its_grandchildren():
    child = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; subprocess.run(['sleep', '5'])"]
    )
    try:
        deadline = time.monotonic() + 5
        found: list[int] = []
        while time.monotonic() < deadline and len(found) < 2:
            found = cpu_share.children_of(os.getpid())
            time.sleep(0.05)
        assert child.pid in found
        assert len(found) >= 2, "the child's own child (sleep) too"
    finally:
        child.kill()
        child.wait()


def test_the_share_is_cpu_ms_per_verification_and_the_machine_busy_share():
    before = cpu_share.CpuSnapshot({"server": 1.0, "kiosks": 2.0}, busy_s=10.0, total_s=20.0)
    after = cpu_share.CpuSnapshot({"server": 1.5, "kiosks": 3.0}, busy_s=13.0, total_s=24.0)
    figures = cpu_share.share(before, after, verifications=100)
    assert figures == {"server_ms": 5.0, "kiosks_ms": 10.0, "machine_busy_pct": 75.0}


def test_a_snapshot_of_this_process_counts_it():
    snap = cpu_share.snapshot({"me": [os.getpid()]})
    assert snap.by_party["me"] > 0
    assert 0 < snap.busy_s <= snap.total_s
