"""The one way the flow runs work off its own thread: a queue drained by a thread of its own.

:class:`QueueWorker` runs queued jobs one at a time, in order. A failing job is counted and
logged (throttled, so a repeated failure cannot flood the log); the next job still runs. A
subclass that has something to do when no job came for a while gives the longest wait
(:meth:`QueueWorker._idle_timeout`) and the work (:meth:`QueueWorker._on_idle`): the server
worker refreshes its challenge that way, with no timer thread.

Every worker of the runner is one: the lights and buzzer (:class:`~kiosk.flow.runner.Signals`),
the journal (:class:`~kiosk.flow.journal.Journal`), the card's jobs
(:class:`~kiosk.flow.card_worker.CardWorker`) and the server's
(:class:`~kiosk.flow.server_worker.ServerWorker`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

Job = Callable[[], None]


class ThrottledLog:
    """Logs a repeated failure once, then every hundredth time (the log must not flood).

    Called from an ``except`` block: the traceback goes with the message.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, key: str, message: str, *args: object) -> None:
        with self._lock:
            count = self._counts.get(key, 0) + 1
            self._counts[key] = count
        if count == 1 or count % 100 == 0:
            self._logger.error(message + " (%d times)", *args, count, exc_info=True)


class QueueWorker:
    """Runs queued jobs one at a time, in order, on a thread of its own (see the module).

    ``name`` names the thread; a failing job is counted in :attr:`failures` and logged, under
    the key ``what``, with the message ``failure``, on the logger of the subclass's module.
    """

    def __init__(self, name: str, what: str, failure: str) -> None:
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._what = what
        self._failure = failure
        self._log_failure = ThrottledLog(logging.getLogger(type(self).__module__))
        self.failures = 0

    def start(self) -> None:
        self._thread.start()

    def _put(self, job: Job) -> None:
        self._queue.put(job)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every job queued so far is done (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop once the jobs queued so far are done (waiting at most ``timeout_s``)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout_s)

    # -- for subclasses --

    def _idle_timeout(self) -> float | None:
        """Seconds to wait for a job before :meth:`_on_idle` runs; None: wait for a job."""
        return None

    def _on_idle(self) -> None:
        """Runs on the worker's thread when no job came within :meth:`_idle_timeout`."""

    # -- the thread --

    def _run(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=self._idle_timeout())
            except queue.Empty:
                self._guarded(self._on_idle)
                continue
            try:
                if job is None:
                    return
                self._guarded(job)
            finally:
                self._queue.task_done()

    def _guarded(self, job: Job) -> None:
        try:
            job()
        except Exception:
            self.failures += 1
            self._log_failure(self._what, self._failure)
