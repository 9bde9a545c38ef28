"""The uploader: drains the outbox to the clinic server, in its own process.

One loop, one batch at a time, in sequence order::

    take the oldest records (at most ``batch_max_records`` and ``batch_max_bytes``)
    wait while the batch is not full and its oldest record is younger than ``batch_max_age_s``
    POST it to /api/v1/outbox/batch (mutual TLS, every request signed with the device key),
        through the kiosk's one clinic client (``ClinicClient.send_batch``)
    delete exactly the sequences the server acknowledged (it acknowledges only after commit)

Failures are sorted the way ``kiosk.errors`` sorts them:

- temporary (no connection, timeout, HTTP 408/425/429/5xx): wait ``full jitter`` exponential
  backoff - a uniform draw in [0, min(cap, base * 2**n)] - and at least the server's
  ``Retry-After`` (capped), then send the same records again; the server deduplicates;
- 413: the batch was too large for the server: halve the batch and go on; a single record
  the server will not take is parked;
- 401/403: the server does not accept this kiosk (certificate revoked or expired, clock far
  off): nothing is wrong with the records, so none is parked; the uploader reports
  ``blocked`` and keeps retrying at the backoff cap;
- any other refusal (400, 404, 422, ...) is permanent for this batch: its records are moved
  aside (``Outbox.park``) with the reason, an ``outbox.parked`` record and a status alarm,
  and the queue moves on. ``kiosk uploader unpark`` queues them again.

A damaged outbox file (``OutboxCorrupt``) ends the loop: the unit restarts the process, and
opening the outbox quarantines the file and recovers its rows.

With several servers (``[server] urls``, instances sharing one database) the client sends a
batch that cannot reach its server to the next one at once (``kiosk.clinic_client``); the
shared database deduplicates, so a batch the first server committed but could not acknowledge
is acknowledged as duplicates by the second. The server that took the last batch shows in the
state's ``extra["server"]``.

A record leaves the outbox only after the server acknowledged it, so killing this process at
any moment loses nothing: the batch in flight is sent again and the server stores it once.
The loop's state (``UploaderState``) goes to a small JSON file for the status LED and
``kiosk uploader status``; it never holds payloads, which the uploader cannot read anyway.
The last success (the time of the last acknowledgement) and the last error (its code and
time) are kept in the outbox file itself (``Outbox.acknowledge``,
``Outbox.note_upload_error``), so they survive a reboot; ``kiosk uploader run`` holds a lock
next to the outbox while it runs (:mod:`kiosk.outbox.running`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from contract.errors import ConfigError
from contract.outbox_record import Batch, BatchAck, SealedRecord
from kiosk.errors import OutboxCorrupt, OutboxError, ServerRejected, ServerUnreachable
from kiosk.outbox.queue import Outbox
from kiosk.outbox.records import RECORD_OVERHEAD, wire_size

log = logging.getLogger(__name__)

BLOCKING_STATUSES = frozenset({401, 403})


@dataclass(frozen=True)
class UploadPolicy:
    """Batch bounds and retry timing."""

    batch_max_records: int = 500
    #: On the wire; the clinic server's device gate takes request bodies up to 64 KiB.
    batch_max_bytes: int = 60 * 1024
    batch_max_age_s: float = 2.0
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 300.0
    retry_after_cap_s: float = 3600.0
    idle_poll_s: float = 1.0

    def __post_init__(self) -> None:
        if self.batch_max_records < 1 or self.batch_max_bytes < 4096:
            raise ConfigError("uploader batches need at least 1 record and 4 KiB")
        if not 0 < self.backoff_base_s <= self.backoff_cap_s:
            raise ConfigError("uploader backoff needs 0 < base <= cap")
        if self.batch_max_age_s < 0 or self.idle_poll_s <= 0 or self.retry_after_cap_s <= 0:
            raise ConfigError("uploader waits must be positive")


class Backoff:
    """Exponential backoff with full jitter (a uniform draw up to the exponential bound)."""

    def __init__(self, base_s: float, cap_s: float, rng: random.Random) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self._rng = rng
        self.failures = 0

    def bound(self) -> float:
        """The largest wait the next failure can draw."""
        return min(self.cap_s, self.base_s * 2.0 ** min(self.failures, 60))

    def next_delay(self) -> float:
        delay = self._rng.uniform(0.0, self.bound())
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


class BatchSender(Protocol):
    """Sends one batch; raises ``ServerUnreachable`` or ``ServerRejected``.

    In the kiosk, the same :class:`~kiosk.clinic_client.ClinicClient` the flow uses (opened
    with :func:`~kiosk.clinic_client.open_clinic_client`), which translates failures.
    """

    def send_batch(self, batch: Batch) -> BatchAck: ...


@dataclass
class UploaderState:
    """What the uploader last did, for LEDs, heartbeats and ``kiosk uploader status``."""

    state: str = "starting"  # starting, idle, sending, backoff, blocked
    sent_records: int = 0
    sent_batches: int = 0
    parked_batches: int = 0
    failures: int = 0
    last_success_wall: float | None = None
    last_error: str | None = None
    next_attempt_in_s: float = 0.0
    extra: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return asdict(self)


class Uploader:
    """Drains one outbox through one ``BatchSender`` (see the module docstring)."""

    def __init__(
        self,
        outbox: Outbox,
        sender: BatchSender,
        policy: UploadPolicy | None = None,
        *,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        state_file: Path | None = None,
    ) -> None:
        self.outbox = outbox
        self.sender = sender
        self.policy = policy or UploadPolicy()
        self.backoff = Backoff(
            self.policy.backoff_base_s, self.policy.backoff_cap_s, rng or random.SystemRandom()
        )
        self.state = UploaderState()
        self._monotonic = monotonic
        self._wall = wall
        self._state_file = state_file
        self._max_records = self.policy.batch_max_records
        self._boot_id = outbox.boot_id

    # -- one step -----------------------------------------------------------------------------

    def step(self) -> float:
        """Send at most one batch; seconds to wait before the next step (0: go on at once)."""
        try:
            records = self.outbox.pending(
                max_records=self._max_records, max_bytes=self.policy.batch_max_bytes
            )
        except OutboxCorrupt:
            raise  # the process restarts, and opening the outbox quarantines the file
        except OutboxError as exc:
            return self._failed(f"outbox: {exc.code}", self.backoff.next_delay(), "backoff")
        if not records:
            self._set("idle", 0.0)
            return self.policy.idle_poll_s
        linger = self._linger(records)
        if linger > 0:
            self._set("idle", linger)
            return linger
        backlog = self.outbox.backlog()
        sent_bytes = sum(len(r.sealed) + RECORD_OVERHEAD for r in records)
        remaining = type(backlog)(
            max(0, backlog.records - len(records)), max(0, backlog.bytes - sent_bytes)
        )
        batch = Batch(self.outbox.device_id, tuple(records), remaining)
        self._set("sending", 0.0)
        try:
            ack = self.sender.send_batch(batch)
        except ServerUnreachable as exc:
            return self._failed(exc.code, self.backoff.next_delay(), "backoff")
        except ServerRejected as exc:
            return self._rejected(records, exc)
        try:
            self.outbox.acknowledge(ack.acked, high_water=ack.high_water)
        except OutboxError as exc:
            # the server holds them; they are sent again later and acknowledged as duplicates
            return self._failed(f"outbox: {exc.code}", self.backoff.next_delay(), "backoff")
        self.backoff.reset()
        self._max_records = min(self.policy.batch_max_records, self._max_records * 2)
        self.state.sent_records += len(ack.acked) - ack.duplicates
        self.state.sent_batches += 1
        self.state.last_success_wall = self._wall()
        self.state.last_error = None
        server = getattr(self.sender, "server_url", None)
        if isinstance(server, str):
            self.state.extra["server"] = server
        more = len(records) >= self._max_records or len(ack.acked) < len(records)
        self._set("sending" if more else "idle", 0.0)
        return 0.0

    def _linger(self, records: list[SealedRecord]) -> float:
        """How long to wait for a fuller batch (0 when it should leave now)."""
        if len(records) >= self._max_records or self.policy.batch_max_age_s <= 0:
            return 0.0
        size = sum(wire_size(len(r.sealed)) for r in records)
        if size >= self.policy.batch_max_bytes // 2:
            return 0.0
        oldest = records[0].header
        if oldest.boot_id != self._boot_id:
            return 0.0
        age = self._monotonic() - oldest.mono_ns / 1e9
        return max(0.0, min(self.policy.batch_max_age_s - age, self.policy.idle_poll_s))

    def _rejected(self, records: list[SealedRecord], exc: ServerRejected) -> float:
        status = exc.status
        if exc.temporary:  # the client marks the statuses contract.api calls temporary
            delay = self.backoff.next_delay()
            if exc.retry_after_s is not None:
                delay = max(delay, min(exc.retry_after_s, self.policy.retry_after_cap_s))
            return self._failed(f"server.{status}", delay, "backoff")
        if status == 413 and len(records) > 1:
            self._max_records = max(1, len(records) // 2)
            return self._failed("server.413", 0.0, "sending")
        if status in BLOCKING_STATUSES:
            self.backoff.failures = max(self.backoff.failures, 60)
            return self._failed(f"server.{status}", self.backoff.next_delay(), "blocked")
        reason = f"HTTP {status}: {exc}"[:200] if status else f"refused: {exc}"[:200]
        try:
            self.outbox.park([r.seq for r in records], reason)
        except OutboxError as err:
            return self._failed(f"outbox: {err.code}", self.backoff.next_delay(), "backoff")
        self.state.parked_batches += 1
        log.error(
            "outbox batch of %d records parked: %s (first seq %d)",
            len(records),
            reason,
            records[0].seq,
            extra={
                "DEVICE": self.outbox.device_id,
                "REASON": f"server.{status}.parked",
                "FIRST_SEQ": records[0].seq,
            },
        )
        self.backoff.reset()
        return self._failed(f"server.{status}.parked", 0.0, "sending")

    def _failed(self, code: str, delay: float, state: str) -> float:
        self.state.failures += 1
        self.state.last_error = code
        with contextlib.suppress(OutboxError):  # an outbox that refuses this has its own alarm
            self.outbox.note_upload_error(code)
        self._set(state, delay)
        return delay

    def _set(self, state: str, next_in: float) -> None:
        changed = self.state.state != state or self.state.last_error is not None
        self.state.state = state
        self.state.next_attempt_in_s = round(next_in, 3)
        if changed and self._state_file is not None:
            self._write_state()

    def _write_state(self) -> None:
        assert self._state_file is not None
        tmp = self._state_file.with_name(self._state_file.name + ".tmp")
        try:
            tmp.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(self.state.to_json()))
            os.replace(tmp, self._state_file)
        except OSError:
            log.warning("cannot write the uploader state file %s", self._state_file)

    # -- the loop -----------------------------------------------------------------------------

    def run(
        self,
        stop: threading.Event,
        *,
        wait: Callable[[float], object] | None = None,
        until_empty: bool = False,
    ) -> None:
        """Step until ``stop`` is set (or, with ``until_empty``, until the queue is empty).

        ``wait`` sleeps between steps (default: ``stop.wait``, so a stop is immediate).
        """
        sleep = wait or stop.wait
        while not stop.is_set():
            delay = self.step()
            if until_empty and self.state.state == "idle" and self._queue_empty():
                return
            if delay > 0:
                sleep(delay)

    def _queue_empty(self) -> bool:
        with contextlib.suppress(OutboxError):
            return self.outbox.status().records == 0
        return False
