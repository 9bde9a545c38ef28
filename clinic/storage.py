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

Connections are pooled (SQLite: a small pool here; PostgreSQL: psycopg's ``ConnectionPool``);
each is used by one thread at a time. On PostgreSQL every statement is a prepared statement
after its first use on a connection, a read-only unit of work runs without ``BEGIN``/``COMMIT``
(PostgreSQL's READ COMMITTED gives each statement its own snapshot either way), a write sends
its ``BEGIN`` together with its first statement, and ``Database.write_one`` runs a statement
that is atomic by itself in one round trip. The async application calls
the storage from worker threads (see ``clinic.eligibility``). Errors of the drivers underneath
are translated into ``StorageError`` here.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
import time
import weakref
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

    def __init__(self, conn: Any, *, begin: bool = False) -> None:
        self._conn = conn
        #: a write's ``BEGIN`` not sent yet: it goes out with the first statement
        self._begin = begin
        self.began = False

    def _run(self, sql: str, params: Params) -> Any:
        import psycopg

        try:
            if self._begin:
                self._begin = False
                self.began = True
                self._conn.execute("BEGIN")
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

        self._send_begin()
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
        self._run(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE", ())

    def _send_begin(self) -> None:
        if self._begin:
            self._begin = False
            self.began = True
            self._conn.execute("BEGIN")


# --- the database ----------------------------------------------------------------------------


#: Seconds a request waits for a free PostgreSQL connection.
PG_WAIT_S = 30.0
#: Seconds after a lost connection during which each pooled connection is checked before use.
PG_SUSPECT_S = 30.0

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
        self._pg_pool: Any = None
        self._pg_lost_at = -1e9
        self._pg_unpooled: weakref.WeakSet[Any] = weakref.WeakSet()
        #: the URL it was opened with (credentials included: never log it)
        self.url = url_for_display

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
            from psycopg_pool import ConnectionPool
        except ImportError as exc:  # pragma: no cover - the clinic extra installs it
            raise StorageError("psycopg is not installed (pip install .[clinic])") from exc

        def refuse() -> Any:  # psycopg's pool makes the connections
            raise StorageError("the PostgreSQL pool makes its own connections")

        display = url.rsplit("@", maxsplit=1)[-1] if "@" in url else url
        db = cls("postgresql", refuse, pool_size=pool_size, url_for_display=display)
        db.url = url
        db._pg_pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs={
                "row_factory": dict_row,
                "connect_timeout": 10,
                "autocommit": True,
                # a statement becomes a server-side prepared statement on its second use
                "prepare_threshold": 1,
            },
            open=False,
            name="clinic",
            timeout=PG_WAIT_S,
            reconnect_timeout=60,
        )
        try:
            db._pg_pool.open(wait=False)
        except psycopg.Error as exc:  # pragma: no cover - open(wait=False) defers errors
            raise StorageError(f"cannot connect to PostgreSQL: {exc}", temporary=True) from exc
        return db

    # -- connections --

    def _acquire(self) -> Any:
        if self._pg_pool is not None:
            return self._pg_acquire(self._pg_pool)
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

    def _pg_acquire(self, pool: Any) -> Any:
        from psycopg_pool import PoolClosed, PoolTimeout

        # after a lost connection: fail fast rather than hold requests for the whole wait, and
        # check each connection before use (the idle ones may all have been cut)
        suspect = time.monotonic() - self._pg_lost_at < PG_SUSPECT_S
        wait = 2.0 if suspect else PG_WAIT_S
        try:
            conn = pool.getconn(timeout=wait)
            for _ in range(self._pool_size if suspect else 0):
                try:
                    pool.check_connection(conn)
                    break
                except Exception:
                    with contextlib.suppress(Exception):
                        conn.close()
                    pool.putconn(conn)
                    conn = pool.getconn(timeout=wait)
            return conn
        except PoolClosed:
            raise StorageError("the database is closed") from None
        except PoolTimeout as exc:
            self._pg_lost_at = time.monotonic()
            if suspect:
                # the pool backs off while it reconnects: one connection of our own, closed
                # after use, answers as soon as the database is back
                return self._pg_own_connection()
            raise StorageError(f"cannot connect to PostgreSQL: {exc}", temporary=True) from exc

    def _pg_own_connection(self) -> Any:
        import psycopg

        try:
            conn = psycopg.connect(self.url, **self._pg_pool.kwargs)
        except psycopg.Error as exc:
            raise StorageError(f"cannot connect to PostgreSQL: {exc}", temporary=True) from exc
        self._pg_unpooled.add(conn)
        return conn

    def _release(self, conn: Any, *, broken: bool) -> None:
        if self._pg_pool is not None and conn in self._pg_unpooled:
            self._pg_unpooled.discard(conn)
            with contextlib.suppress(Exception):
                conn.close()
            return
        if self._pg_pool is not None:
            if broken:
                self._pg_lost_at = time.monotonic()
                with contextlib.suppress(Exception):
                    conn.close()
            with contextlib.suppress(Exception):
                self._pg_pool.putconn(conn)  # a closed one is replaced by the pool
            return
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
                yield from self._pg_transaction(conn, write)
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

    def _pg_transaction(self, conn: Any, write: bool) -> Iterator[Transaction]:
        if not write:
            # READ COMMITTED: each statement has its own snapshot, in a transaction or not
            yield _PgTransaction(conn)
            return
        tx = _PgTransaction(conn, begin=True)
        try:
            yield tx
        except BaseException:
            if tx.began:
                with contextlib.suppress(Exception):
                    conn.execute("ROLLBACK")
            raise
        if tx.began:
            conn.execute("COMMIT")

    def write_one(self, sql: str, params: Params = ()) -> Row | None:
        """One statement that is atomic by itself (``RETURNING``'s row, or None), written
        in a single round trip: no ``BEGIN``/``COMMIT`` around it on PostgreSQL."""
        return self._single(sql, params, rowcount=False)  # type: ignore[return-value]

    def write(self, sql: str, params: Params = ()) -> int:
        """Like ``write_one``; the number of rows the statement touched."""
        return self._single(sql, params, rowcount=True)  # type: ignore[return-value]

    def _single(self, sql: str, params: Params, *, rowcount: bool) -> Row | int | None:
        if self.backend == "sqlite":
            with self.transaction(write=True) as tx:
                return tx.execute(sql, params) if rowcount else tx.one(sql, params)
        conn = self._acquire()
        broken = False
        try:
            run = _PgTransaction(conn)
            return run.execute(sql, params) if rowcount else run.one(sql, params)
        except Exception as exc:
            broken = self._is_connection_error(exc)
            if broken:
                raise StorageError(f"database connection lost: {exc}", temporary=True) from exc
            raise
        finally:
            self._release(conn, broken=broken)

    def _is_connection_error(self, exc: Exception) -> bool:
        if self.backend != "postgresql":
            return False
        import psycopg

        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        if self._pg_pool is not None:
            with contextlib.suppress(Exception):
                self._pg_pool.close(timeout=5)
            return
        while True:
            try:
                conn = self._pool.get_nowait()
            except queue.Empty:
                break
            with contextlib.suppress(Exception):
                conn.close()

    # -- schema --

    def applied_versions(self) -> dict[str, int]:
        """Each component's newest applied version (empty for a new database)."""
        with self.transaction(write=True) as tx:
            tx.execute(_MIGRATIONS_DDL)
            rows = tx.all(
                "SELECT component, MAX(version) AS version FROM schema_migrations"
                " GROUP BY component"
            )
        return {row["component"]: int(row["version"]) for row in rows}

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
            refuse_downgrade(done, schemas)
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


def refuse_downgrade(done: set[tuple[str, int]], schemas: Sequence[Schema]) -> None:
    """A database that a newer release migrated further than this code knows is refused:
    this code would not know its tables (go back to the newer release, or restore a backup
    made before the upgrade)."""
    for schema in schemas:
        known = max((m.version for m in schema.migrations), default=0)
        newest = max((v for c, v in done if c == schema.component), default=0)
        if newest > known:
            raise StorageError(
                f"the database's {schema.component} tables are at version {newest}, this "
                f"release knows up to {known}: a newer release migrated it; run that release, "
                "or restore the backup made before the upgrade (a downgrade is refused)"
            )


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
