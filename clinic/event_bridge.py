"""Change notices across instances: PostgreSQL's LISTEN/NOTIFY.

Several instances of the server may share one PostgreSQL database (a chain of clinics; see
docs/scale-out.md). A staff decision made on instance B must reach the staff pages and the
kiosks' long-polls connected to instance A. The kiosk API's process of each instance runs one
``NoticeBridge``:

- every notice made in the instance (``EventHub.broadcast_to``) goes out as
  ``NOTIFY onshi_events, '{"from": <instance>, "event": {...}}'`` from a sender thread, so
  the publisher never waits for the database;
- a listener thread holds a connection of its own with ``LISTEN onshi_events`` and hands the
  other instances' notices to the hub (``EventHub.arrive``); its own come back too and are
  dropped by their ``from``.

Notices carry no patient data (a verification's id and type, a kiosk's id): the pages read the
rest from the database. When the listening connection is lost the thread reconnects every
second; notices sent meanwhile are lost, which the pages survive (the next notice, or a
reload, brings the list up to date).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import secrets
import threading
from typing import Any

from clinic.events import Event, EventHub
from clinic.storage import Database

log = logging.getLogger(__name__)

CHANNEL = "onshi_events"
#: PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
MAX_PAYLOAD = 7900
RECONNECT_S = 1.0


class NoticeBridge:
    """Sends this instance's notices to the others and hands theirs to the hub."""

    def __init__(self, db: Database, hub: EventHub) -> None:
        if db.backend != "postgresql":
            raise ValueError("notices cross instances through PostgreSQL only")
        self.instance = secrets.token_hex(8)
        self._db = db
        self._url = db.url
        self._hub = hub
        self._outgoing: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._threads = [
            threading.Thread(target=self._send_loop, name="notice-send", daemon=True),
            threading.Thread(target=self._listen_loop, name="notice-listen", daemon=True),
        ]

    def start(self, timeout: float = 10.0) -> None:
        """Start both threads; returns when the listener is listening (or after timeout)."""
        self._hub.broadcast_to(self._outgoing.put)
        for thread in self._threads:
            thread.start()
        self._listening.wait(timeout)

    def stop(self) -> None:
        self._hub.broadcast_to(None)
        self._stop.set()
        self._outgoing.put(None)
        for thread in self._threads:
            thread.join(5)

    # -- sending --

    def _send_loop(self) -> None:
        while True:
            event = self._outgoing.get()
            if event is None or self._stop.is_set():
                return
            payload = json.dumps({"from": self.instance, "event": event}, ensure_ascii=False)
            if len(payload.encode("utf-8")) > MAX_PAYLOAD:
                log.warning("a notice of %d bytes is too large to cross instances", len(payload))
                continue
            try:
                self._db.write_one("SELECT pg_notify(?, ?)", (CHANNEL, payload))
            except Exception:
                log.warning("a notice did not reach the other instances", exc_info=True)

    # -- listening --

    def _listen_loop(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    while not self._stop.is_set():
                        for notice in conn.notifies(timeout=0.5, stop_after=100):
                            self._arrived(notice.payload)
            except psycopg.Error as exc:
                if self._stop.is_set():
                    return
                log.warning("listening for other instances' notices: %s; reconnecting", exc)
                self._stop.wait(RECONNECT_S)

    def _arrived(self, payload: str) -> None:
        try:
            message: Any = json.loads(payload)
        except ValueError:
            log.warning("a notice on %s is not JSON; ignored", CHANNEL)
            return
        if not isinstance(message, dict) or message.get("from") == self.instance:
            return
        event = message.get("event")
        if isinstance(event, dict):
            with contextlib.suppress(RuntimeError):
                self._hub.arrive(event)
