"""Throttling password guesses on the staff dashboard, per source address and per account.

No account is ever locked for everyone: a wrong password costs the *address* it came from
time, not the staff member at another desk. The state lives in the database (table
``login_throttle``), so several servers sharing one PostgreSQL database throttle together.

- **Per address.** The first ``free_failures`` wrong passwords from an address cost nothing;
  after that, each makes the address wait before its next attempt: 1 s, 2 s, 4 s, ... up to
  ``max_delay_s``. Guessing across many user names counts the same as on one.
- **Per account.** Wrong passwords for one user name from all addresses together: past the
  account's allowance, an address that has failed itself recently waits the account's delay
  too (so many addresses guessing one password take turns). An address with no failure of
  its own is not held up: the staff member at their own desk still logs in.
- Failures are forgotten ``forget_after_s`` after an address's (or account's) last one; a
  successful login clears the account's count (not the address's, or an attacker with an
  account of their own could wash their address clean between guesses).

An attempt is *reserved* before its password is hashed: it counts as a failure from the
start, in the same transaction that checked the wait, so concurrent requests cannot all slip
through; a success gives the reservation back. A throttled attempt hashes nothing. Each server
also remembers the waits it has refused an address for (``known_wait``): the address's own,
and the account's wait on that address for that user name. An address that keeps knocking
while it must wait is answered from memory, on the event loop, without a database
transaction. A wait only ends by running out; a success gives back what it changes (the
address's reservation, the account's count) in memory too.
IPv6 addresses count per /64 (one machine usually has a whole /64).
"""

from __future__ import annotations

import ipaddress
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from clinic.storage import Database, Migration, Schema, Transaction

LOGIN_THROTTLE_SCHEMA = Schema(
    "login_throttle",
    (
        Migration.portable(
            1,
            """
            CREATE TABLE login_throttle (
                scope TEXT NOT NULL,
                subject TEXT NOT NULL,
                failures INTEGER NOT NULL,
                last_failure DOUBLE PRECISION NOT NULL,
                blocked_until DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (scope, subject)
            );
            CREATE INDEX login_throttle_last ON login_throttle (last_failure)
            """,
        ),
    ),
)

ADDRESS = "address"
ACCOUNT = "account"


@dataclass(frozen=True)
class Delays:
    """How long to wait after ``n`` failures: nothing for the first few, then doubling."""

    free_failures: int
    first_delay_s: float
    max_delay_s: float

    def after(self, failures: int) -> float:
        if failures < self.free_failures:
            return 0.0
        exponent = min(failures - self.free_failures, 32)
        return float(min(self.max_delay_s, self.first_delay_s * 2**exponent))


ADDRESS_DELAYS = Delays(free_failures=5, first_delay_s=1.0, max_delay_s=900.0)
ACCOUNT_DELAYS = Delays(free_failures=10, first_delay_s=1.0, max_delay_s=300.0)
FORGET_AFTER_S = 3600.0
#: Waits remembered in memory at most (expired ones are dropped first).
REMEMBERED_WAITS = 10_000


def address_key(host: str | None) -> str:
    """The throttled unit of a client address: the IPv4 address, or the IPv6 /64."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:100]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass(frozen=True)
class _State:
    failures: int
    last_failure: float
    blocked_until: float


class LoginThrottle:
    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], float],
        address_delays: Delays = ADDRESS_DELAYS,
        account_delays: Delays = ACCOUNT_DELAYS,
        forget_after_s: float = FORGET_AFTER_S,
    ) -> None:
        self._db = db
        self._clock = clock
        self.address_delays = address_delays
        self.account_delays = account_delays
        self.forget_after_s = forget_after_s
        #: (address, "") -> when the address may try again; (address, username) -> when it
        #: may try that user name again (the account's wait on an address that failed)
        self._waits: dict[tuple[str, str], float] = {}
        self._waits_lock = threading.Lock()

    def known_wait(self, address: str, username: str = "") -> float:
        """Seconds the address must still wait, as far as this server knows (0: ask ``reserve``)."""
        keys = [(address, "")] + ([(address, username)] if username else [])
        now = self._clock()
        longest = max(self.address_delays.max_delay_s, self.account_delays.max_delay_s)
        wait = 0.0
        with self._waits_lock:
            for key in keys:
                until = self._waits.get(key)
                if until is None:
                    continue
                if until - now > longest:
                    del self._waits[key]  # the clock was set back: ask again
                    continue
                wait = max(wait, until - now)
        return wait

    def _remember(self, key: tuple[str, str], until: float, now: float) -> None:
        with self._waits_lock:
            if until <= now:
                self._waits.pop(key, None)
                return
            if len(self._waits) >= REMEMBERED_WAITS:
                self._waits = {k: u for k, u in self._waits.items() if u > now}
                if len(self._waits) >= REMEMBERED_WAITS:
                    self._waits.pop(next(iter(self._waits)))
            self._waits[key] = until

    def _forget_account(self, username: str) -> None:
        with self._waits_lock:
            for key in [k for k in self._waits if k[1] == username]:
                del self._waits[key]

    def reserve(self, address: str, username: str) -> float | None:
        """None: go ahead (the attempt counts as failed until ``succeeded``); else the wait."""
        now = self._clock()
        known = self.known_wait(address, username)
        if known > 0:
            return known
        with self._db.transaction(write=True) as tx:
            tx.lock("login_throttle")
            by_address = self._state(tx, ADDRESS, address, now)
            by_account = self._state(tx, ACCOUNT, username, now)
            # never longer than the delay itself, should the clock have been set back
            wait = min(
                by_address.blocked_until - now, self.address_delays.after(by_address.failures)
            )
            if by_address.failures > 0:
                wait = max(
                    wait,
                    min(
                        by_account.blocked_until - now,
                        self.account_delays.after(by_account.failures),
                    ),
                )
            if wait > 0:
                self._remember((address, ""), by_address.blocked_until, now)
                self._remember((address, username), now + wait, now)
                return wait
            tx.execute(
                "DELETE FROM login_throttle WHERE last_failure < ?", (now - self.forget_after_s,)
            )
            self._save(tx, ADDRESS, address, by_address.failures + 1, now, self.address_delays)
            self._save(tx, ACCOUNT, username, by_account.failures + 1, now, self.account_delays)
        return None

    def succeeded(self, address: str, username: str) -> None:
        """The reserved attempt was right: give the address its reservation back."""
        with self._db.transaction(write=True) as tx:
            tx.lock("login_throttle")
            row = tx.one(
                "SELECT failures, last_failure FROM login_throttle WHERE scope = ? AND subject = ?",
                (ADDRESS, address),
            )
            if row is not None:
                failures = max(0, int(row["failures"]) - 1)
                last = float(row["last_failure"])
                self._save(tx, ADDRESS, address, failures, last, self.address_delays)
                until = blocked_until(last, failures, self.address_delays)
                self._remember((address, ""), until, self._clock())
            tx.execute(
                "DELETE FROM login_throttle WHERE scope = ? AND subject = ?", (ACCOUNT, username)
            )
        self._forget_account(username)

    def _state(self, tx: Transaction, scope: str, subject: str, now: float) -> _State:
        row = tx.one(
            "SELECT failures, last_failure, blocked_until FROM login_throttle"
            " WHERE scope = ? AND subject = ?",
            (scope, subject),
        )
        if row is None or now - row["last_failure"] > self.forget_after_s:
            return _State(0, 0.0, 0.0)
        return _State(int(row["failures"]), float(row["last_failure"]), float(row["blocked_until"]))

    def _save(  # noqa: PLR0917 - one row's columns
        self,
        tx: Transaction,
        scope: str,
        subject: str,
        failures: int,
        last_failure: float,
        delays: Delays,
    ) -> None:
        tx.execute(
            "INSERT INTO login_throttle (scope, subject, failures, last_failure, blocked_until)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (scope, subject) DO UPDATE SET"
            " failures = excluded.failures, last_failure = excluded.last_failure,"
            " blocked_until = excluded.blocked_until",
            (scope, subject, failures, last_failure, blocked_until(last_failure, failures, delays)),
        )


def blocked_until(last_failure: float, failures: int, delays: Delays) -> float:
    """When a subject with ``failures`` may try again: 0 (now) while they are free."""
    delay = delays.after(failures)
    return last_failure + delay if delay > 0 else 0.0


def retry_after(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds, at least one."""
    return str(max(1, math.ceil(seconds)))
