"""The queue worker every flow worker is: jobs in order on a thread of its own, failures
counted and logged without stopping it, and the idle wait a subclass can use as its timer."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from kiosk.flow.queue_worker import QueueWorker, ThrottledLog


class Worker(QueueWorker):
    def __init__(self) -> None:
        super().__init__("test-worker", "test-job", "a test job failed")

    def put(self, job) -> None:
        self._put(job)


class Ticking(Worker):
    """Ticks on its own after ``every_s`` without a job, until told to stop."""

    def __init__(self, every_s: float) -> None:
        super().__init__()
        self.every_s: float | None = every_s
        self.ticks = 0

    def _idle_timeout(self) -> float | None:
        return self.every_s

    def _on_idle(self) -> None:
        self.ticks += 1
        if self.ticks >= 3:
            self.every_s = None


def test_jobs_run_in_order_on_the_worker_thread() -> None:
    worker = Worker()
    seen: list[tuple[int, str]] = []
    worker.start()
    try:
        for n in range(20):
            worker.put(lambda n=n: seen.append((n, threading.current_thread().name)))
        assert worker.flush()
    finally:
        worker.close()
    assert [n for n, _ in seen] == list(range(20))
    assert {name for _, name in seen} == {"test-worker"}


def test_a_failing_job_is_counted_and_logged_and_the_next_one_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    worker = Worker()
    done = threading.Event()

    def fail() -> None:
        raise RuntimeError("broken")

    worker.start()
    try:
        worker.put(fail)
        worker.put(fail)
        worker.put(done.set)
        assert worker.flush()
    finally:
        worker.close()
    assert done.is_set()
    assert worker.failures == 2
    logged = [r for r in caplog.records if "a test job failed" in r.getMessage()]
    assert len(logged) == 1, "a repeated failure is logged once"
    assert logged[0].name == __name__, "on the logger of the worker's module"


def test_the_idle_wait_is_the_subclass_timer() -> None:
    worker = Ticking(every_s=0.02)
    worker.start()
    try:
        deadline = time.monotonic() + 5
        while worker.ticks < 3:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.1)
        assert worker.ticks == 3, "no timer once the subclass says so"
    finally:
        worker.close()


def test_closing_ends_the_thread_and_a_worker_never_started_closes_too() -> None:
    Worker().close()
    worker = Worker()
    worker.start()
    worker.close()
    assert not any(t.name == "test-worker" and t.is_alive() for t in threading.enumerate())


def test_a_repeated_failure_is_logged_once_then_every_hundredth_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = ThrottledLog(logging.getLogger("test.throttled"))
    for _ in range(250):
        try:
            raise ValueError("again")
        except ValueError:
            log("key", "it failed")
    counts = [r.getMessage() for r in caplog.records if r.name == "test.throttled"]
    assert counts == ["it failed (1 times)", "it failed (100 times)", "it failed (200 times)"]
