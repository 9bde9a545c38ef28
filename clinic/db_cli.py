"""``clinic-server db migrate | status``, ``clinic-server backup FILE``, ``restore FILE``.

See ``clinic.migrations`` (schema versions and how to add a table) and ``clinic.backup``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path

from clinic.config import config_of
from clinic.extensions import load_extensions
from clinic.storage import Database


def _database(args: argparse.Namespace) -> Database:
    config = config_of(args)
    return Database.open(config.database_url, pool_size=2)


def _schemas(args: argparse.Namespace) -> list:  # type: ignore[type-arg]
    from clinic.migrations import server_schemas

    return server_schemas(load_extensions(config_of(args).extensions))


def cmd_db(args: argparse.Namespace) -> int:
    from clinic.migrations import schema_status

    schemas = _schemas(args)
    with contextlib.closing(_database(args)) as db:
        if args.db_command == "migrate":
            applied = db.migrate(schemas)
            for component, version in applied:
                print(f"applied {component} {version}")
            print("the database is current" if not applied else f"{len(applied)} step(s) applied")
            return 0
        states = schema_status(db, schemas)
        if args.json:
            print(json.dumps([s.__dict__ | {"state": s.state} for s in states], indent=1))
        else:
            print(f"{'component':<16} {'applied':>7} {'known':>5}  state")
            for s in states:
                print(f"{s.component:<16} {s.applied:>7} {s.known:>5}  {s.state}")
        return 0 if all(s.applied == s.known for s in states) else 1


def cmd_backup(args: argparse.Namespace) -> int:
    from clinic.backup import backup, record_counts

    with contextlib.closing(_database(args)) as db:
        backup(db, Path(args.file))
        counts = record_counts(db)
    print(f"backup written to {args.file} ({sum(counts.values())} rows in {len(counts)} tables)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from clinic.backup import record_counts, restore

    schemas = _schemas(args)
    with contextlib.closing(_database(args)) as db:
        restore(db, Path(args.file), schemas, force=args.force)
        db.migrate(schemas)  # a backup of an older release is brought up to this one
        counts = record_counts(db)
    print(f"restored from {args.file} ({sum(counts.values())} rows in {len(counts)} tables)")
    return 0


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = commands.add_parser("db", help="schema versions: migrate, status")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("migrate", help="apply the schema steps this release adds")
    status = db_commands.add_parser("status", help="each component's applied and known version")
    status.add_argument("--json", action="store_true", help="print the states as JSON")
    db.set_defaults(func=cmd_db)

    backup = commands.add_parser("backup", help="a consistent copy of the live database")
    backup.add_argument("file", help="a new file (SQLite copy, or pg_dump's custom format)")
    backup.set_defaults(func=cmd_backup)

    restore = commands.add_parser("restore", help="replace the database with a backup")
    restore.add_argument("file", help="a file that clinic-server backup wrote")
    restore.add_argument(
        "--force", action="store_true", help="even if an instance wrote its row within a minute"
    )
    restore.set_defaults(func=cmd_restore)
