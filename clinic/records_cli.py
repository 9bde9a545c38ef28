"""``clinic-server`` commands about the records the server keeps.

::

    national  load FILE | list [--json] | revoke (--card-id ID | --issuer RFC4514 --serial N)
    purge     [--days N]   reduce records older than the retention period to their summary
    record-key             make the record key if it is missing; where it is
    access-log verify      check the log's keyed chain and its anchors

The simulated national system's data, the retention purge, the key of the personal fields,
and the access log's check. ``clinic.cli`` registers them with :func:`add_parsers`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from clinic.config import config_of
from contract.errors import ConfigError

# --- national ---------------------------------------------------------------------------------


def cmd_national(args: argparse.Namespace) -> int:
    from clinic.national import simulated as national
    from clinic.server import open_database

    db = open_database(config_of(args))
    try:
        if args.national_command == "load":
            count = national.load_insured(
                db, national.read_insured_jsonl(Path(args.file)), now=time.time()
            )
            print(f"loaded {count} insured-person entries")
        elif args.national_command == "list":
            rows = national.list_insured(db)
            if args.json:
                print(json.dumps(rows, ensure_ascii=False, indent=1))
            else:
                for r in rows:
                    flag = " REVOKED" if r["revoked"] else ""
                    print(
                        f"{r['card_id']:40} validity {r['validity_code']}"
                        f" records {r['records']} serial {r['serial']}{flag}"
                    )
        else:
            count = national.revoke_insured(
                db,
                now=time.time(),
                card_id=args.card_id,
                issuer=args.issuer,
                serial=args.serial,
            )
            if count == 0:
                print("no such certificate in the simulated national system", file=sys.stderr)
                return 1
            print(f"revoked {count} certificate(s) in the simulated national system")
    finally:
        db.close()
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    from clinic.at_rest import purge
    from clinic.extensions import load_extensions
    from clinic.server import open_database

    config = config_of(args)
    days = config.retention_days if args.days is None else args.days
    if days < 0:
        raise ConfigError("--days is >= 0")
    db = open_database(config, load_extensions(config.extensions))
    try:
        result = purge(db, retention_days=days, now=time.time())
    finally:
        db.close()
    print(f"retention {days:g} days: {result}")
    return 0


def cmd_record_key(args: argparse.Namespace) -> int:
    from clinic.at_rest import RecordCipher

    path = config_of(args).record_key_path
    made = RecordCipher.create(path)
    RecordCipher.load(path)  # readable, private, well-formed
    verb = "made" if made else "kept"
    print(f"{verb} the record key {path} (back it up apart from the database)")
    return 0


def cmd_access_log(args: argparse.Namespace) -> int:
    from clinic.access_log import AccessLog, Seal
    from clinic.server import open_database

    config = config_of(args)
    paths = config.paths
    try:
        seal = Seal.load(paths.access_log_key, paths.access_log_anchor)
    except ConfigError as exc:
        print(f"access log NOT VERIFIED: {exc}", file=sys.stderr)
        return 1
    db = open_database(config)
    try:
        check = AccessLog(db, clock=time.time, seal=seal).check_chain()
    finally:
        db.close()
    if check.intact:
        print(f"access log intact: {check.entries} entries, chain and anchors agree")
        if check.unanchored:
            print(
                f"note: the {check.unanchored} newest entries are not anchored in"
                f" {paths.access_log_anchor} (the server stopped before anchoring them, or"
                " anchor lines were removed): compare the newest entry with the last"
                " 'access log head' line in the server's log",
                file=sys.stderr,
            )
        return 0
    where = f" from entry {check.first_broken_id}" if check.first_broken_id is not None else ""
    print(f"access log ALTERED{where}: {check.problem}", file=sys.stderr)
    return 1


# --- the parsers ------------------------------------------------------------------------------


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers ``national``, ``purge``, ``record-key`` and ``access-log``."""
    national = commands.add_parser("national", help="the simulated national system's data")
    national_commands = national.add_subparsers(dest="national_command", required=True)
    load = national_commands.add_parser(
        "load", help="load insured.jsonl, as kiosk sim population writes it"
    )
    load.add_argument("file", help="the insured.jsonl file")
    nlist = national_commands.add_parser("list", help="the insured people it knows")
    nlist.add_argument("--json", action="store_true", help="as JSON")
    nrevoke = national_commands.add_parser(
        "revoke", help="the national side revokes a card's certificate"
    )
    nrevoke.add_argument("--card-id", default=None, metavar="ID", help="the card's id")
    nrevoke.add_argument(
        "--issuer", default=None, metavar="DN", help="the certificate's issuer (RFC 4514)"
    )
    nrevoke.add_argument(
        "--serial", type=int, default=None, metavar="N", help="the certificate's serial number"
    )
    national.set_defaults(func=cmd_national)

    purge_command = commands.add_parser(
        "purge", help="reduce records older than the retention period to their summary"
    )
    purge_command.add_argument(
        "--days",
        type=float,
        default=None,
        help="the retention period in days (default: retention_days in clinic.toml, 90)",
    )
    purge_command.set_defaults(func=cmd_purge)

    record_key = commands.add_parser(
        "record-key", help="the key of the personal fields in the database (made once, kept)"
    )
    record_key.set_defaults(func=cmd_record_key)

    access = commands.add_parser("access-log", help="the record access log")
    access_commands = access.add_subparsers(dest="access_command", required=True)
    access_commands.add_parser(
        "verify", help="check the log's keyed chain and its anchors (exit 1 when they disagree)"
    )
    access.set_defaults(func=cmd_access_log)
