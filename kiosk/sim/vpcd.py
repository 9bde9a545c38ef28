"""Putting a virtual card on the real PC/SC stack through vsmartcard's vpcd reader driver.

vpcd (loaded by pcscd) listens on 127.0.0.1:35963 for reader ``Virtual PCD 00 00`` and :35964
for ``Virtual PCD 00 01``. A card is a TCP client of that port: connecting is inserting the
card, closing the socket is taking it off the reader (pcscd reports the insertion and the
removal as for a real card). Messages both ways are a 2-byte big-endian length followed by
that many bytes (vsmartcard's vpcd protocol):

=============  ===============  ===================
vpcd sends     meaning          the card answers
=============  ===============  ===================
``00``         power off        nothing
``01``         power on         nothing
``02``         reset            nothing
``04``         get ATR          the ATR
longer         a command APDU   the response APDU
=============  ===============  ===================

pcscd polls for presence by asking for the ATR (about every 400 ms), so insertion and removal
are noticed within that time.

Latency: vpcd writes each message in two parts; with Nagle's algorithm and delayed ACKs every
APDU would take about 44 ms. The socket sets ``TCP_NODELAY`` once and ``TCP_QUICKACK`` before
every ``recv`` (the kernel clears it again), which brings a round trip through pcscd well
under a millisecond.

What a client sees when the card leaves, as measured with pcsc-lite 1.9 and vpcd 0.8: a
command in flight (``Faults.remove_after``, or removal while the card hangs) returns
SCARD_S_SUCCESS with an EMPTY response (vpcd reports the closed socket as a zero-length
answer); the next commands fail with SCARD_E_NOT_TRANSACTED until pcscd's presence poll
notices, then with SCARD_W_REMOVED_CARD. A PC/SC client must treat a response shorter than
two bytes as a failed exchange.

A card cannot come back faster than the reader notices it left: pcscd's event handler polls
every 0.4 s, and when it learnt of a removal only through a failed command (its public state
already says "empty") and the next card is there by its next poll, it never sees the reader
empty, never powers the new card up, and the reader stays "empty" (pcsc-lite 1.9.9). So
:func:`insert` waits until :data:`REMOVAL_SETTLE_S` have passed since the last removal from
the same reader in this process, as a hand putting a card back would.

The card stays on the reader across a pcscd restart: when vpcd drops the connection without
the card being removed, the slot reconnects as soon as vpcd listens again (``reconnect``).
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from kiosk.errors import PcscServiceGone
from kiosk.sim.card import VirtualJpkiCard
from kiosk.sim.profile import TimingModel

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
READER_0_PORT = 35963
"""vpcd's port for reader ``Virtual PCD 00 00``."""
READER_1_PORT = 35964
"""vpcd's port for reader ``Virtual PCD 00 01``."""

_POWER_OFF, _POWER_ON, _RESET, _GET_ATR = 0x00, 0x01, 0x02, 0x04
_RECONNECT_INTERVAL_S = 0.1

REMOVAL_SETTLE_S = 0.5
"""Time between a removal and the next insertion into the same reader: one pcscd poll (0.4 s)
and a margin, so pcscd always sees the reader empty in between."""


class _ReaderSlots:
    """When a card last left each vpcd reader (host, port): the physical state of the slot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._removed_at: dict[tuple[str, int], float] = {}

    def removed(self, host: str, port: int) -> None:
        with self._lock:
            self._removed_at[(host, port)] = time.monotonic()

    def wait_until_free(self, host: str, port: int) -> None:
        with self._lock:
            last = self._removed_at.get((host, port))
        if last is not None:
            remaining = last + REMOVAL_SETTLE_S - time.monotonic()
            if remaining > 0:
                time.sleep(remaining)


_SLOTS = _ReaderSlots()


class VpcdUnavailable(PcscServiceGone, ConnectionError):
    """Nothing listens on the vpcd port: pcscd is not running, or vpcd is not installed."""


Corruption = Literal["truncate", "flip", "garbage"]


@dataclass(frozen=True)
class Faults:
    """Misbehaviour on demand, counted in command APDUs since insertion (the first is 1).

    - ``remove_after=n``: the card leaves the reader upon receiving the n-th APDU, without
      answering it. The card acts on that APDU first only with ``remove_processes=True`` (a
      card that spent the PIN try and was pulled before the answer got back).
    - ``hang_after=n``: from the n-th APDU on the card answers nothing at all (not even the
      presence polls) until removed. The APDU is not processed.
    - ``corrupt_after=n``: from the n-th APDU on, every response is mangled: ``truncate``
      drops its last byte, ``flip`` inverts the lowest bit of its first byte, ``garbage``
      replaces it with random bytes of the same length.
    """

    remove_after: int | None = None
    remove_processes: bool = False
    hang_after: int | None = None
    corrupt_after: int | None = None
    corrupt: Corruption = "flip"

    def __post_init__(self) -> None:
        for name in ("remove_after", "hang_after", "corrupt_after"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} counts APDUs from 1")
        if self.corrupt not in ("truncate", "flip", "garbage"):
            raise ValueError(f"unknown corruption {self.corrupt!r}")


def corrupt_response(response: bytes, how: Corruption, rng: random.Random) -> bytes:
    """``response`` mangled as :class:`Faults` describes (never empty: vpcd would eject)."""
    if how == "truncate":
        return response[:-1] if len(response) > 1 else b"\x90"
    if how == "flip":
        return bytes([response[0] ^ 0x01]) + response[1:]
    return rng.randbytes(len(response))


class InsertedCard:
    """A virtual card on a vpcd reader, served by a background thread until :meth:`remove`.

    Use :func:`insert` or :func:`inserted` to make one.
    """

    def __init__(
        self,
        card: VirtualJpkiCard,
        *,
        host: str = DEFAULT_HOST,
        port: int = READER_0_PORT,
        faults: Faults | None = None,
        timing: TimingModel | None = None,
        reconnect: bool = True,
    ) -> None:
        self.card = card
        self.host = host
        self.port = port
        self.faults = faults or Faults()
        self.timing = timing if timing is not None else card.profile.timing
        self._reconnect = reconnect
        self._rng = random.Random(0x4A504B49)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._powered = threading.Event()
        self._gone = threading.Event()
        self._power_up_seen = False
        self._hanging = False
        self._apdu_count = 0
        self._error: BaseException | None = None
        _SLOTS.wait_until_free(host, port)
        self._sock: socket.socket | None = self._connect()
        if self._sock is None:
            raise VpcdUnavailable(
                f"no vpcd reader listens on {host}:{port}: is pcscd running with the "
                "vsmartcard-vpcd driver? (sh tests/services/pcscd.sh starts it)"
            )
        self._thread = threading.Thread(
            target=self._run, name=f"virtual-card-{card.profile.id}", daemon=True
        )
        self._thread.start()

    # --- what a test looks at -------------------------------------------------------------

    @property
    def apdu_count(self) -> int:
        """Command APDUs received since insertion (those a fault swallowed included)."""
        return self._apdu_count

    @property
    def removed(self) -> bool:
        """Whether the card has left the reader (removed, or a removal fault fired)."""
        return self._gone.is_set()

    def wait_until_powered(self, timeout: float) -> bool:
        """Wait until pcscd has powered the card up and read its ATR since insertion."""
        return self._powered.wait(timeout)

    def wait_until_removed(self, timeout: float) -> bool:
        """Wait until the card has left the reader (e.g. after a ``remove_after`` fault)."""
        return self._gone.wait(timeout)

    def remove(self) -> None:
        """Take the card off the reader (close the socket) and stop the thread.

        Raises ``RuntimeError`` if the card failed while serving (a simulator bug).
        """
        self._stop.set()
        with self._lock:  # wake the thread: a blocked recv returns at once, nothing is sent
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RD)
        self._thread.join()
        self._close(abort=True)
        if self._error is not None:
            error, self._error = self._error, None
            raise RuntimeError(f"the virtual card {self.card.profile.id} failed") from error

    def __enter__(self) -> InsertedCard:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    # --- the connection -------------------------------------------------------------------

    def _connect(self) -> socket.socket | None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=2.0)
        except OSError:
            return None
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _close(self, *, abort: bool = False) -> None:
        """Close the connection; ``abort`` resets it (RST): the card left, nothing more follows."""
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is None:
            return
        if abort:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        if abort:
            _SLOTS.removed(self.host, self.port)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                with self._lock:
                    sock = self._sock
                if sock is None:
                    sock = self._wait_for_reader()
                    if sock is None:
                        break
                if self._serve(sock) == "removed" or not self._reconnect:
                    break
                # vpcd dropped us (pcscd stopped): the card stays on the reader, unpowered
                self.card.power_off()
                self._powered.clear()
                self._power_up_seen = False
                self._close()
        except BaseException as exc:  # a simulator bug: surface it in remove()
            self._error = exc
        finally:
            self.card.power_off()
            self._close(abort=True)
            self._gone.set()

    def _wait_for_reader(self) -> socket.socket | None:
        while not self._stop.wait(_RECONNECT_INTERVAL_S):
            sock = self._connect()
            if sock is not None:
                with self._lock:
                    if self._stop.is_set():
                        sock.close()
                        return None
                    self._sock = sock
                log.info("virtual card %s back on the reader", self.card.profile.id)
                return sock
        return None

    def _serve(self, sock: socket.socket) -> Literal["removed", "dropped"]:
        while True:
            try:
                message = self._receive(sock)
            except OSError:
                message = None
            if message is None:
                return "removed" if self._stop.is_set() else "dropped"
            if self._hanging:
                continue
            if len(message) == 1:
                self._control(sock, message[0])
                continue
            outcome = self._command(sock, message)
            if outcome is not None:
                return outcome

    def _control(self, sock: socket.socket, code: int) -> None:
        if code == _POWER_OFF:
            self.card.power_off()
            self._power_up_seen = False
        elif code == _POWER_ON:
            self.card.power_on()
            self._power_up_seen = True
        elif code == _RESET:
            self.card.reset()
            self._power_up_seen = True
        elif code == _GET_ATR:
            self._send(sock, self.card.atr)
            if self._power_up_seen:
                self._powered.set()
        else:
            log.warning("vpcd sent unknown control byte %02X", code)

    def _command(self, sock: socket.socket, apdu: bytes) -> Literal["removed"] | None:
        self._apdu_count += 1
        number = self._apdu_count
        faults = self.faults
        if faults.remove_after is not None and number >= faults.remove_after:
            if faults.remove_processes:
                self.card.process(apdu)
            self._stop.set()
            return "removed"
        if faults.hang_after is not None and number >= faults.hang_after:
            self._hanging = True
            return None
        response = self.card.process(apdu)
        delay = self.timing.delay_for(apdu, response, signing=self.card.last_signed)
        if delay and self._stop.wait(delay):
            return "removed"
        if faults.corrupt_after is not None and number >= faults.corrupt_after:
            response = corrupt_response(response, faults.corrupt, self._rng)
        self._send(sock, response)
        return None

    @staticmethod
    def _receive(sock: socket.socket) -> bytes | None:
        header = _receive_exactly(sock, 2)
        if header is None:
            return None
        return _receive_exactly(sock, int.from_bytes(header, "big"))

    @staticmethod
    def _send(sock: socket.socket, payload: bytes) -> None:
        with contextlib.suppress(OSError):  # vpcd gone: the next receive notices
            sock.sendall(len(payload).to_bytes(2, "big") + payload)


def _receive_exactly(sock: socket.socket, size: int) -> bytes | None:
    buffer = bytearray()
    while len(buffer) < size:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        chunk = sock.recv(size - len(buffer))
        if not chunk:
            return None
        buffer += chunk
    return bytes(buffer)


def insert(
    card: VirtualJpkiCard,
    *,
    host: str = DEFAULT_HOST,
    port: int = READER_0_PORT,
    faults: Faults | None = None,
    timing: TimingModel | None = None,
    reconnect: bool = True,
) -> InsertedCard:
    """Put ``card`` on the vpcd reader at ``host:port``; :meth:`InsertedCard.remove` ends it.

    ``timing`` defaults to the card profile's. Raises :class:`VpcdUnavailable` when nothing
    listens there.
    """
    return InsertedCard(
        card, host=host, port=port, faults=faults, timing=timing, reconnect=reconnect
    )


@contextlib.contextmanager
def inserted(
    card: VirtualJpkiCard,
    *,
    host: str = DEFAULT_HOST,
    port: int = READER_0_PORT,
    faults: Faults | None = None,
    timing: TimingModel | None = None,
    reconnect: bool = True,
) -> Iterator[InsertedCard]:
    """``with inserted(card) as slot:`` the card is on the reader inside the block."""
    slot = insert(card, host=host, port=port, faults=faults, timing=timing, reconnect=reconnect)
    try:
        yield slot
    finally:
        slot.remove()
