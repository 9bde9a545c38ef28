"""Change notices inside the server: new and updated verifications.

The service publishes from worker threads; the dashboard's server-sent-event streams and the
kiosks' long-polls listen on the event loop. ``publish`` is thread-safe and never blocks; a
listener that falls far behind loses the oldest notices (the page then reloads its list).

When the dashboard runs in a process of its own (``clinic.staff_process``), each side's hub
relays what is published on it to the other (``relay_to``), which hands it to its own
listeners (``deliver``) without relaying it back.

When several instances share one PostgreSQL database, the kiosk API's process of each also
hands every notice made in its instance (published there, or delivered from its dashboard's
process) to ``broadcast_to``'s sink (``clinic.event_bridge``: PostgreSQL's NOTIFY), and
notices from the other instances come in through ``arrive``: to the listeners here and to this
instance's dashboard process, never broadcast again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import Any

Event = dict[str, Any]

_QUEUE_LIMIT = 1000


class EventHub:
    """Fan-out of notices to the listeners on one event loop."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: set[asyncio.Queue[Event | None]] = set()
        self._changed: dict[str, list[Any]] = {}
        self._closed = False
        self._relay: Callable[[Event], None] | None = None
        self._broadcast: Callable[[Event], None] | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach to the loop the server runs on (done when the server starts)."""
        self._loop = loop
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def publish(self, event: Event) -> None:
        """Send ``event`` to every listener; callable from any thread."""
        loop = self._loop
        if loop is None or self._closed or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        broadcast = self._broadcast
        if broadcast is not None:
            broadcast(event)
        if running is loop:
            self._dispatch(event)
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._dispatch, event)

    def broadcast_to(self, sink: Callable[[Event], None] | None) -> None:
        """Also hand every notice made in this instance to ``sink`` (any thread; it must not
        block); None stops it."""
        self._broadcast = sink

    def arrive(self, event: Event) -> None:
        """A notice from another instance: to the listeners here (callable from any thread)."""
        loop = self._loop
        if loop is None or self._closed or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._dispatch, event)

    def relay_to(self, sink: Callable[[Event], None] | None) -> None:
        """Also hand every notice published here to ``sink`` (on the loop); None stops it."""
        self._relay = sink

    def deliver(self, event: Event) -> None:
        """A notice published in the other process: to the listeners here (on the loop)."""
        if not self._closed:
            broadcast = self._broadcast
            if broadcast is not None:
                broadcast(event)
            self._dispatch(event, relay=False)

    def _dispatch(self, event: Event, *, relay: bool = True) -> None:
        if relay and self._relay is not None:
            self._relay(event)
        for q in list(self._queues):
            if q.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
            q.put_nowait(event)
        verification_id = event.get("id")
        if isinstance(verification_id, str):
            entry = self._changed.pop(verification_id, None)
            if entry is not None:
                entry[0].set()

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[Event | None]]:
        """A queue of the notices published while the block runs; None = the hub closed.

        Waiting on the queue with a timeout is safe (unlike cancelling a generator).
        """
        q: asyncio.Queue[Event | None] = asyncio.Queue(_QUEUE_LIMIT)
        self._queues.add(q)
        if self._closed:
            q.put_nowait(None)
        try:
            yield q
        finally:
            self._queues.discard(q)

    async def listen(self) -> AsyncGenerator[Event, None]:
        """Notices as they come, until the hub closes."""
        with self.subscribe() as q:
            while True:
                event = await q.get()
                if event is None:
                    return
                yield event

    @contextlib.contextmanager
    def watching(self, verification_id: str) -> Iterator[asyncio.Event]:
        """An event set when ``verification_id`` next changes (or the hub closes).

        Register before reading the current state, so no change slips in between.
        """
        entry = self._changed.get(verification_id)
        if entry is None or entry[0].is_set():
            entry = self._changed[verification_id] = [asyncio.Event(), 0]
        if self._closed:
            entry[0].set()
        entry[1] += 1
        try:
            yield entry[0]
        finally:
            entry[1] -= 1
            if entry[1] <= 0 and self._changed.get(verification_id) is entry:
                del self._changed[verification_id]

    def close(self) -> None:
        """End every stream and wake every long-poll (the server is stopping)."""
        self._closed = True
        for q in list(self._queues):
            with contextlib.suppress(asyncio.QueueFull):
                q.put_nowait(None)
        for entry in self._changed.values():
            entry[0].set()
        self._changed.clear()
