"""Backups of the clinic's database, and restoring one.

SQLite: ``clinic-server backup FILE`` copies the live database with SQLite's online backup
API (``sqlite3.Connection.backup``): a consistent copy while the server keeps serving, written
private to the server's user, then checked (``PRAGMA integrity_check``). ``clinic-server
restore FILE`` puts such a copy back the same way, with every instance stopped (it refuses
while a server wrote its row in ``server_instances`` within the last minute, unless
``--force``) and never a copy that a newer release migrated further than this one knows.

PostgreSQL: the documented way is PostgreSQL's own ``pg_dump --format=custom`` and
``pg_restore --clean --if-exists --no-owner``; ``clinic-server backup``/``restore`` run them
for you when they are installed, with the password passed in the environment, never on the
command line. See docs/scale-out.md.

The backup holds patient data (sealed, see ``clinic.at_rest``, but the record key is in the
data directory): keep it as you keep the data directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from clinic.errors import StorageError
from clinic.instances import live_instances
from clinic.storage import Database, Schema, refuse_downgrade
from contract.errors import ConfigError


def record_counts(db: Database) -> dict[str, int]:
    """Rows per table (the restore tests compare these, and ``backup`` prints them)."""
    with db.transaction() as tx:
        if db.backend == "sqlite":
            names = [
                r["name"]
                for r in tx.all(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                    " AND name NOT LIKE 'sqlite_%' ORDER BY name"
                )
            ]
        else:
            names = [
                r["table_name"]
                for r in tx.all(
                    "SELECT table_name FROM information_schema.tables"
                    " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
                    " ORDER BY table_name"
                )
            ]
        counts: dict[str, int] = {}
        for name in names:
            if not name.replace("_", "").isalnum():
                continue
            row = tx.one(f"SELECT COUNT(*) AS n FROM {name}")  # noqa: S608 - a table's name
            counts[name] = int(row["n"]) if row else 0
    return counts


def backup(db: Database, destination: Path) -> None:
    """A consistent copy of the live database in ``destination`` (a new file)."""
    if destination.exists():
        raise ConfigError(f"{destination} exists: the backup never overwrites a file")
    destination.parent.mkdir(parents=True, exist_ok=True)
    if db.backend == "postgresql":
        _pg_tool("pg_dump", db.url, ["--format=custom", f"--file={destination}"])
        os.chmod(destination, 0o600)
        return
    source = Path(db.url_for_display.removeprefix("sqlite://"))
    fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        with (
            contextlib.closing(sqlite3.connect(source)) as src,
            contextlib.closing(sqlite3.connect(destination)) as dst,
        ):
            src.backup(dst, pages=1024)
            _check_sqlite(dst, destination)
    except sqlite3.Error as exc:
        destination.unlink(missing_ok=True)
        raise StorageError(f"SQLite backup failed: {exc}") from exc


def restore(db: Database, source: Path, schemas: list[Schema], *, force: bool = False) -> None:
    """Replace the database's contents with the backup ``source``."""
    if not source.is_file():
        raise ConfigError(f"{source}: no such backup file")
    running = live_instances(db)
    if running and not force:
        where = ", ".join(f"{r['host']} pid {r['pid']}" for r in running)
        raise ConfigError(
            f"a server is running on this database ({where}): stop every instance first "
            "(or give --force if it was killed within the last minute)"
        )
    if db.backend == "postgresql":
        _pg_tool("pg_restore", db.url, ["--clean", "--if-exists", "--no-owner", str(source)])
        return
    target = Path(db.url_for_display.removeprefix("sqlite://"))
    try:
        with contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src:
            _check_sqlite(src, source)
            done = {
                (c, v) for c, v in src.execute("SELECT component, version FROM schema_migrations")
            }
            refuse_downgrade(done, schemas)
            with contextlib.closing(sqlite3.connect(target)) as dst:
                src.backup(dst, pages=1024)
    except sqlite3.Error as exc:
        raise StorageError(f"SQLite restore from {source} failed: {exc}") from exc


def _check_sqlite(conn: sqlite3.Connection, path: Path) -> None:
    (verdict,) = conn.execute("PRAGMA integrity_check").fetchone()
    if verdict != "ok":
        raise StorageError(f"{path} fails SQLite's integrity check: {verdict}")


def _pg_tool(tool: str, url: str, arguments: list[str]) -> None:
    """Run pg_dump or pg_restore on the database at ``url`` (its password in PGPASSWORD)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    program = shutil.which(tool)
    if program is None:
        raise ConfigError(f"{tool} is not installed (Debian: postgresql-client)")
    params = conninfo_to_dict(url)
    password = params.pop("password", None)
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    result = subprocess.run(
        [program, f"--dbname={make_conninfo('', **params)}", *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if result.returncode != 0:
        raise StorageError(f"{tool} failed: {result.stderr.strip()[-500:]}")
