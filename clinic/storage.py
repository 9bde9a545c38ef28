"""The clinic server's storage: SQLite by default, PostgreSQL for a chain with many kiosks.

One small API over both back-ends::

    db = Database.open("sqlite:///var/lib/onshi-clinic/clinic.db")   # or "postgresql://..."
    db.migrate([CLINIC_SCHEMA, ...])
    with db.transaction(write=True) as tx:
        tx.execute("INSERT INTO t (a, b) VALUES (?, ?)", (1, "x"))
        row = tx.one("SELECT a, b FROM t WHERE a = ?", (1,))     # a dict, or None

SQL is written once with ``?`` placeholders and the subset both engines share (``RETURNING``,
``ON CONFLICT``); a ``Migration`` may give separate DDL per back-end where they differ.

Other modules register their own tables by handing their own ``Schema`` (a component name and
its ordered migrations) to ``Database.migrate``; each component's applied versions are
recorded in ``schema_migrations``, so components evolve independently.

Connections are pooled; each is used by one thread at a time. The async application calls
the storage from worker threads (see ``clinic.eligibility``). Errors of the drivers underneath
are translated into ``StorageError`` here.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from clinic.errors import ConflictError, StorageError

Backend = Literal["sqlite", "postgresql"]
Row = dict[str, Any]
Params = Sequence[Any]


@dataclass(frozen=True)
class Migration:
    """One step of a component's schema: DDL for each back-end (usually the same text)."""

    version: int
    sqlite: str
    postgresql: str

    @classmethod
    def portable(cls, version: int, sql: str) -> Migration:
        """A migration whose SQL runs unchanged on both back-ends."""
        return cls(version, sql, sql)

    def sql_for(self, backend: Backend) -> str:
        return self.sqlite if backend == "sqlite" else self.postgresql


@dataclass(frozen=True)
class Schema:
    """The tables one component owns: a name and its migrations in version order."""

    component: str
    migrations: tuple[Migration, ...]

    def __post_init__(self) -> None:
        versions = [m.version for m in self.migrations]
        if versions != sorted(set(versions)) or (versions and versions[0] < 1):
            raise ValueError(f"{self.component}: migration versions must rise from 1")


class Transaction(Protocol):
    """What a unit of work can do; ``?`` placeholders on both back-ends."""

    backend: Backend

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run a statement; the number of rows it touched."""
        ...

    def executemany(self, sql: str, rows: Sequence[Params]) -> None: ...

    def one(self, sql: str, params: Params = ()) -> Row | None: ...

    def all(self, sql: str, params: Params = ()) -> list[Row]: ...

    def lock(self, table: str) -> None:
        """Serialise writers on ``table`` until the transaction ends."""
        ...


# --- SQLite ----------------------------------------------------------------------------------


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Row:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}


class _SqliteTransaction:
    backend: Backend = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _run(self, sql: str, params: Params) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise ConflictError(str(exc)) from exc
        except sqlite3.OperationalError:
            raise  # busy/locked: the transaction decides (temporary)
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"SQLite: {exc}") from exc

    def execute(self, sql: str, params: Params = ()) -> int:
        return self._run(sql, params).rowcount

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        try:
            self._conn.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise ConflictError(str(exc)) from exc

    def one(self, sql: str, params: Params = ()) -> Row | None:
        row: Row | None = self._run(sql, params).fetchone()
        return row

    def all(self, sql: str, params: Params = ()) -> list[Row]:
        rows: list[Row] = self._run(sql, params).fetchall()
        return rows

    def lock(self, table: str) -> None:
        """Write transactions already hold SQLite's single write lock (BEGIN IMMEDIATE)."""


# --- PostgreSQL ------------------------------------------------------------------------------

_pg_sql_cache: dict[str, str] = {}


def _pg_sql(sql: str) -> str:
    """``?`` placeholders to psycopg's ``%s`` (and literal ``%`` doubled)."""
    converted = _pg_sql_cache.get(sql)
    if converted is None:
        converted = sql.replace("%", "%%").replace("?", "%s")
        _pg_sql_cache[sql] = converted
    return converted


class _PgTransaction:
    backend: Backend = "postgresql"

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def _run(self, sql: str, params: Params) -> Any:
        import psycopg

        try:
            return self._conn.execute(_pg_sql(sql), params)
        except psycopg.errors.IntegrityError as exc:
            raise ConflictError(str(exc)) from exc
        except (psycopg.OperationalError, psycopg.InterfaceError):
            raise  # the connection: the transaction decides
        except psycopg.Error as exc:
            raise StorageError(f"PostgreSQL: {exc}") from exc

    def execute(self, sql: str, params: Params = ()) -> int:
        rowcount: int = self._run(sql, params).rowcount
        return rowcount

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        import psycopg

        try:
            with self._conn.cursor() as cur:
                cur.executemany(_pg_sql(sql), rows)
        except psycopg.errors.IntegrityError as exc:
            raise ConflictError(str(exc)) from exc

    def one(self, sql: str, params: Params = ()) -> Row | None:
        row: Row | None = self._run(sql, params).fetchone()
        return row

    def all(self, sql: str, params: Params = ()) -> list[Row]:
        rows: list[Row] = self._run(sql, params).fetchall()
        return rows

    def lock(self, table: str) -> None:
        if not table.isidentifier():
            raise ValueError(f"not a table name: {table!r}")
        self._conn.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")


# --- the database ----------------------------------------------------------------------------


_MIGRATIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " component TEXT NOT NULL, version INTEGER NOT NULL, applied_at DOUBLE PRECISION NOT NULL,"
    " PRIMARY KEY (component, version))"
)


class Database:
    """A pool of connections to one SQLite file or one PostgreSQL database."""

    def __init__(
        self,
        backend: Backend,
        connect: Callable[[], Any],
        *,
        pool_size: int,
        url_for_display: str,
    ) -> None:
        self.backend: Backend = backend
        self.url_for_display = url_for_display
        self._connect = connect
        self._pool: queue.LifoQueue[Any] = queue.LifoQueue()
        self._created = 0
        self._pool_size = pool_size
        self._lock = threading.Lock()
        self._closed = False
        # SQLite has one writer at a time; queueing writers here instead of in SQLite's busy
        # handler (which sleeps and retries) keeps latency flat under load.
        self._write_lock = threading.Lock()

    @classmethod
    def open(cls, url: str, *, pool_size: int = 4) -> Database:
        """``sqlite:///abs/path.db``, a plain file path, or ``postgresql://...``."""
        if url.startswith(("postgresql://", "postgres://")):
            return cls._open_postgresql(url, pool_size)
        path = Path(url.removeprefix("sqlite://")) if url.startswith("sqlite://") else Path(url)
        return cls._open_sqlite(path, pool_size)

    @classmethod
    def _open_sqlite(cls, path: Path, pool_size: int) -> Database:
        path.parent.mkdir(parents=True, exist_ok=True)

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
            conn.row_factory = _dict_row
            conn.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL never corrupts the database; a power cut may lose the last
            # transactions, an application crash loses none.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            # removed personal data is overwritten, not left in free pages (clinic.at_rest)
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("PRAGMA busy_timeout=10000")
            return conn

        db = cls("sqlite", connect, pool_size=pool_size, url_for_display=f"sqlite://{path}")
        with contextlib.suppress(OSError):
            # the database holds patient data: keep it private to the server's user
            path.touch(mode=0o600, exist_ok=True)
        return db

    @classmethod
    def _open_postgresql(cls, url: str, pool_size: int) -> Database:
        try:
            import psycopg
            from psycopg.rows import dict_row
        except ImportError as exc:  # pragma: no cover - the clinic extra installs it
            raise StorageError("psycopg is not installed (pip install .[clinic])") from exc

        def connect() -> Any:
            try:
                return psycopg.connect(
                    url, row_factory=dict_row, connect_timeout=10, autocommit=True
                )
            except psycopg.OperationalError as exc:
                raise StorageError(f"cannot connect to PostgreSQL: {exc}", temporary=True) from exc

        display = url.rsplit("@", maxsplit=1)[-1] if "@" in url else url
        return cls("postgresql", connect, pool_size=pool_size, url_for_display=display)

    # -- connections --

    def _acquire(self) -> Any:
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._closed:
                raise StorageError("the database is closed")
            if self._created < self._pool_size:
                self._created += 1
                try:
                    return self._connect()
                except BaseException:
                    self._created -= 1
                    raise
        try:
            return self._pool.get(timeout=30)
        except queue.Empty:
            raise StorageError("no database connection free for 30 s", temporary=True) from None

    def _release(self, conn: Any, *, broken: bool) -> None:
        if broken or self._closed:
            with contextlib.suppress(Exception):
                conn.close()
            with self._lock:
                self._created -= 1
            return
        self._pool.put(conn)

    @contextlib.contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[Transaction]:
        """One unit of work, committed when the block ends, rolled back when it raises."""
        conn = self._acquire()
        broken = False
        try:
            if self.backend == "sqlite":
                yield from self._sqlite_transaction(conn, write)
            else:
                yield from self._pg_transaction(conn)
        except sqlite3.OperationalError as exc:
            raise StorageError(f"SQLite: {exc}", temporary="locked" in str(exc)) from exc
        except StorageError:
            raise
        except Exception as exc:
            broken = self._is_connection_error(exc)
            if broken:
                raise StorageError(f"database connection lost: {exc}", temporary=True) from exc
            raise
        finally:
            self._release(conn, broken=broken)

    def _sqlite_transaction(self, conn: sqlite3.Connection, write: bool) -> Iterator[Transaction]:
        if not write:
            conn.execute("BEGIN")
            try:
                yield _SqliteTransaction(conn)
            finally:
                conn.execute("COMMIT")
            return
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTransaction(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _pg_transaction(self, conn: Any) -> Iterator[Transaction]:
        with conn.transaction():
            yield _PgTransaction(conn)

    def _is_connection_error(self, exc: Exception) -> bool:
        if self.backend != "postgresql":
            return False
        import psycopg

        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        while True:
            try:
                conn = self._pool.get_nowait()
            except queue.Empty:
                break
            with contextlib.suppress(Exception):
                conn.close()

    # -- schema --

    def migrate(self, schemas: Sequence[Schema]) -> list[tuple[str, int]]:
        """Apply every migration not yet applied; the (component, version) pairs applied."""
        applied: list[tuple[str, int]] = []
        with self.transaction(write=True) as tx:
            if self.backend == "postgresql":
                # one migrator at a time, even across processes
                tx.execute("SELECT pg_advisory_xact_lock(?)", (0x6F6E736869,))
            tx.execute(_MIGRATIONS_DDL)
            done = {
                (row["component"], row["version"])
                for row in tx.all("SELECT component, version FROM schema_migrations")
            }
            for schema in schemas:
                for migration in schema.migrations:
                    if (schema.component, migration.version) in done:
                        continue
                    for statement in _split_statements(migration.sql_for(self.backend)):
                        tx.execute(statement)
                    tx.execute(
                        "INSERT INTO schema_migrations (component, version, applied_at)"
                        " VALUES (?, ?, ?)",
                        (schema.component, migration.version, time.time()),
                    )
                    applied.append((schema.component, migration.version))
        return applied


def _split_statements(sql: str) -> list[str]:
    """A script split into statements, keeping ``;`` inside literals and trigger bodies."""
    statements: list[str] = []
    buffer = ""
    for piece in sql.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \n\t;"):
                statements.append(buffer.strip().removesuffix(";").strip())
            buffer = ""
    if buffer.strip(" \n\t;"):
        statements.append(buffer.strip().removesuffix(";").strip())
    return statements
