"""Staff accounts and dashboard sessions.

Passwords are stored as argon2id hashes (memory-hard: RFC 9106's low-memory profile, 64 MiB
and 3 passes, computed in one lane so that one hash takes one core, about 0.2 s). There is no
default password: ``clinic-server init`` and ``staff add`` ask for one. Wrong passwords slow
down the address they come from (``clinic.login_throttle``), never lock an account for
everyone. At most ``hash_concurrency`` passwords are hashed at once, on threads of their own
at a lower CPU priority than the kiosk API; an attempt beyond that is refused at once (the
dashboard answers 429), as is a throttled one, without hashing anything.

A session is a random token in a cookie; the database keeps only its SHA-256, so a copy of the
database does not let anyone in. Sessions end after ``idle_timeout_s`` without use and after
``absolute_timeout_s`` in any case. Each session has its own CSRF token that every form
carries back.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from clinic.errors import ConflictError, PasswordPolicyError
from clinic.login_throttle import LoginThrottle
from clinic.storage import Database

MIN_PASSWORD_LENGTH = 10
#: Password hashes computed at once (each takes 64 MiB and one core for ~0.2 s).
HASH_CONCURRENCY = 1
#: argon2 lanes per hash. One lane: a hash runs on one core, so a flood of guesses can take at
#: most one core, at the lowest priority, and leaves the other to the kiosks. (Four lanes ran on
#: both cores of a small server; the guesser's cost per guess is the same, memory x passes.)
HASH_LANES = 1
#: How much lower the hashing threads' CPU priority is (nice) than the event loop's.
HASH_NICENESS = 19
#: Retry-After when every hashing slot is busy.
BUSY_RETRY_AFTER_S = 1.0


@dataclass(frozen=True)
class LoginAttempt:
    """What became of a login: ``ok``, ``wrong``, or refused unheard (``throttled``, ``busy``)."""

    outcome: Literal["ok", "wrong", "throttled", "busy"]
    #: seconds to wait before trying again (throttled and busy only)
    retry_after_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def _lower_priority() -> None:
    """Runs in each hashing thread: Linux nice values are per thread (and inherited by the
    threads argon2 starts), so the event loop keeps its share of the CPU during a flood."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICENESS)


@dataclass(frozen=True)
class StaffSession:
    username: str
    is_admin: bool
    csrf_token: str
    token_hash: str


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    if password.strip() != password or not password.isprintable():
        raise PasswordPolicyError("a password has no leading/trailing spaces or control codes")


class StaffAccounts:
    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], float],
        hasher: PasswordHasher | None = None,
        idle_timeout_s: float = 15 * 60,
        absolute_timeout_s: float = 12 * 3600,
        throttle: LoginThrottle | None = None,
        hash_concurrency: int = HASH_CONCURRENCY,
    ) -> None:
        self._db = db
        self._clock = clock
        self._hasher = hasher or PasswordHasher(parallelism=HASH_LANES)
        self.idle_timeout_s = idle_timeout_s
        self.absolute_timeout_s = absolute_timeout_s
        self._dummy_hash: str | None = None
        self.throttle = throttle or LoginThrottle(db, clock=clock)
        if hash_concurrency < 1:
            raise ValueError("hash_concurrency is at least 1")
        self._hash_slots = threading.BoundedSemaphore(hash_concurrency)
        self._hash_pool = ThreadPoolExecutor(
            hash_concurrency, thread_name_prefix="clinic-password", initializer=_lower_priority
        )

    # -- accounts --

    def add(self, username: str, password: str, *, is_admin: bool = False) -> None:
        if not username or len(username) > 64 or not username.isprintable():
            raise ValueError("a user name is 1-64 printable characters")
        check_password_policy(password)
        try:
            with self._db.transaction(write=True) as tx:
                tx.execute(
                    "INSERT INTO staff (username, password_hash, is_admin, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (username, self._hasher.hash(password), int(is_admin), self._clock()),
                )
        except ConflictError:
            raise ValueError(f"the user {username!r} exists already") from None

    def set_password(self, username: str, password: str) -> None:
        check_password_policy(password)
        with self._db.transaction(write=True) as tx:
            changed = tx.execute(
                "UPDATE staff SET password_hash = ?, failed_logins = 0, locked_until = NULL"
                " WHERE username = ?",
                (self._hasher.hash(password), username),
            )
            tx.execute("DELETE FROM staff_sessions WHERE username = ?", (username,))
        if not changed:
            raise ValueError(f"no user {username!r}")

    def count(self) -> int:
        with self._db.transaction() as tx:
            row = tx.one("SELECT COUNT(*) AS n FROM staff")
        return int(row["n"]) if row else 0

    def list(self) -> list[dict[str, object]]:
        with self._db.transaction() as tx:
            return tx.all(
                "SELECT username, is_admin, created_at, disabled FROM staff ORDER BY username"
            )

    def login(self, address: str, username: str, password: str) -> LoginAttempt:
        """A login from ``address`` (``clinic.login_throttle.address_key``): throttled, bounded.

        Refused unheard, without hashing, when every hashing slot is taken (``busy``) or the
        address must wait (``throttled``); otherwise the password is checked.
        """
        if not self._hash_slots.acquire(blocking=False):
            return LoginAttempt("busy", BUSY_RETRY_AFTER_S)
        try:
            wait = self.throttle.reserve(address, username)
            if wait is not None:
                return LoginAttempt("throttled", wait)
            ok = self._hash_pool.submit(self.authenticate, username, password).result()
        finally:
            self._hash_slots.release()
        if not ok:
            return LoginAttempt("wrong")
        self.throttle.succeeded(address, username)
        return LoginAttempt("ok")

    def authenticate(self, username: str, password: str) -> bool:
        """True for the right password of an enabled account (no throttling: see ``login``).

        (The ``failed_logins`` and ``locked_until`` columns of the first schema are no longer
        used: a per-account lockout let anyone lock staff out.)
        """
        with self._db.transaction() as tx:
            row = tx.one(
                "SELECT password_hash, disabled FROM staff WHERE username = ?", (username,)
            )
        if row is None:
            self._spend(password)
            return False
        ok: bool
        try:
            ok = self._hasher.verify(row["password_hash"], password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        if not ok or row["disabled"]:
            return False
        if self._hasher.check_needs_rehash(row["password_hash"]):
            with self._db.transaction(write=True) as tx:
                tx.execute(
                    "UPDATE staff SET password_hash = ? WHERE username = ?",
                    (self._hasher.hash(password), username),
                )
        return True

    def close(self) -> None:
        self._hash_pool.shutdown(wait=True, cancel_futures=True)

    def _spend(self, password: str) -> None:
        """Hash work for an unknown name too, so timing does not tell which names exist."""
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        with contextlib.suppress(VerifyMismatchError, VerificationError, InvalidHashError):
            self._hasher.verify(self._dummy_hash, password)

    # -- sessions --

    def open_session(self, username: str) -> tuple[str, StaffSession]:
        """A new session: the cookie token (given to the browser only) and the session."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self._clock()
        with self._db.transaction(write=True) as tx:
            row = tx.one("SELECT is_admin FROM staff WHERE username = ?", (username,))
            if row is None:
                raise ValueError(f"no user {username!r}")
            tx.execute(
                "DELETE FROM staff_sessions WHERE last_seen < ?", (now - self.idle_timeout_s,)
            )
            tx.execute(
                "INSERT INTO staff_sessions (token_hash, username, csrf_token, created_at,"
                " last_seen) VALUES (?, ?, ?, ?, ?)",
                (_token_hash(token), username, csrf, now, now),
            )
        return token, StaffSession(username, bool(row["is_admin"]), csrf, _token_hash(token))

    def session(self, token: str | None) -> StaffSession | None:
        """The live session for a cookie token, its idle timer restarted; None if none."""
        if not token or len(token) > 200:
            return None
        now = self._clock()
        token_hash = _token_hash(token)
        with self._db.transaction() as tx:
            row = tx.one(
                "SELECT s.username, s.csrf_token, s.created_at, s.last_seen, t.is_admin,"
                " t.disabled FROM staff_sessions s JOIN staff t ON t.username = s.username"
                " WHERE s.token_hash = ?",
                (token_hash,),
            )
        if row is None:
            return None
        if (
            row["disabled"]
            or now - row["last_seen"] > self.idle_timeout_s
            or now - row["created_at"] > self.absolute_timeout_s
        ):
            self.close_session(token_hash)
            return None
        if now - row["last_seen"] > 5:
            with self._db.transaction(write=True) as tx:
                tx.execute(
                    "UPDATE staff_sessions SET last_seen = ? WHERE token_hash = ?",
                    (now, token_hash),
                )
        return StaffSession(row["username"], bool(row["is_admin"]), row["csrf_token"], token_hash)

    def close_session(self, token_hash: str) -> None:
        with self._db.transaction(write=True) as tx:
            tx.execute("DELETE FROM staff_sessions WHERE token_hash = ?", (token_hash,))


def csrf_ok(session: StaffSession, submitted: str | None) -> bool:
    return submitted is not None and hmac.compare_digest(session.csrf_token, submitted)
