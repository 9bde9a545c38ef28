"""Staff accounts and dashboard sessions.

Passwords are stored as argon2id hashes (memory-hard; argon2-cffi's RFC 9106 low-memory
profile). There is no default password: ``clinic-server init`` and ``staff add`` ask for one.
Five wrong passwords in a row lock the account for a while.

A session is a random token in a cookie; the database keeps only its SHA-256, so a copy of the
database does not let anyone in. Sessions end after ``idle_timeout_s`` without use and after
``absolute_timeout_s`` in any case. Each session has its own CSRF token that every form
carries back.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from clinic.errors import ConflictError, PasswordPolicyError
from clinic.storage import Database

MIN_PASSWORD_LENGTH = 10
MAX_FAILED_LOGINS = 5
LOCKOUT_S = 300.0


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
    ) -> None:
        self._db = db
        self._clock = clock
        self._hasher = hasher or PasswordHasher()
        self.idle_timeout_s = idle_timeout_s
        self.absolute_timeout_s = absolute_timeout_s
        self._dummy_hash: str | None = None

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

    def authenticate(self, username: str, password: str) -> bool:
        """True for the right password of an enabled, unlocked account."""
        now = self._clock()
        with self._db.transaction() as tx:
            row = tx.one(
                "SELECT password_hash, disabled, locked_until FROM staff WHERE username = ?",
                (username,),
            )
        if row is None:
            self._spend(password)
            return False
        locked = row["locked_until"] is not None and row["locked_until"] > now
        ok: bool
        try:
            ok = self._hasher.verify(row["password_hash"], password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        if ok and not locked and not row["disabled"]:
            with self._db.transaction(write=True) as tx:
                new_hash = (
                    self._hasher.hash(password)
                    if self._hasher.check_needs_rehash(row["password_hash"])
                    else row["password_hash"]
                )
                tx.execute(
                    "UPDATE staff SET failed_logins = 0, locked_until = NULL, password_hash = ?"
                    " WHERE username = ?",
                    (new_hash, username),
                )
            return True
        if not ok:
            with self._db.transaction(write=True) as tx:
                tx.execute(
                    "UPDATE staff SET failed_logins = failed_logins + 1,"
                    " locked_until = CASE WHEN failed_logins + 1 >= ? THEN ? ELSE locked_until END"
                    " WHERE username = ?",
                    (MAX_FAILED_LOGINS, now + LOCKOUT_S, username),
                )
        return False

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
