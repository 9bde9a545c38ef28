"""``clinic-server``: set up, run and manage the clinic server.

::

    clinic-server [--data-dir DIR] [--database URL] COMMAND ...

    init      first run: the TLS CA and server certificate, the device CA, the record key,
              the settings and the first (administrator) staff account
    serve     run the kiosk API and the staff dashboard
    device    issue NAME [--out DIR] [--bundle FILE ...] [--ca-key PEM] [--ca-passphrase-file F]
              | revoke NAME
              | list [--json]
    purge     [--days N]   reduce records older than the retention period to their summary
    record-key             make the record key if it is missing; where it is
    staff     add NAME [--admin] | password NAME | list
    national  load FILE | list [--json] | revoke (--card-id ID | --issuer RFC4514 --serial N)
    access-log verify
    db        migrate | status [--json]      schema versions (clinic.migrations)
    backup    FILE   |   restore FILE [--force]      (clinic.backup)
    outbox-key [--kem mlkem768-x25519|x25519]   the key kiosks seal their logs to
    bench     [--json] [--seconds S] [--kiosks 1,8,32]   (from the testbed, when installed)

``national``, ``purge``, ``record-key`` and ``access-log`` are in :mod:`clinic.records_cli`,
``outbox-key`` in :mod:`clinic.outbox_key`, ``doctor`` in :mod:`clinic.doctor`, ``db``,
``backup`` and ``restore`` in :mod:`clinic.db_cli`.

Passwords come from a prompt (asked twice) or ``--password-file`` (its first line); there is
never a default password.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import signal
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from clinic.config import (
    DataDir,
    ServerConfig,
    config_from,
    config_of,
    default_data_dir,
    save_settings,
)
from clinic.errors import StorageError
from clinic.pki import CertificateAuthority, cert_pem, key_pem, new_device_key, write_private
from clinic.times import clinic_time, configure_logging
from contract.errors import ConfigError

DEFAULT_HOSTNAMES = ("127.0.0.1", "localhost", "::1")

#: Entry points that add commands (``add_parser(subparsers)``) from outside the server.
COMMAND_PLUGINS = "onshi_clinic.commands"


def _read_password(args: argparse.Namespace, prompt: str) -> str:
    """A staff password from ``--password-file`` or asked for twice on a terminal; one the
    policy refuses (too short...) is refused at once, before it is asked for again."""
    from clinic.staff import check_password_policy

    if args.password_file is not None:
        try:
            text = Path(args.password_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the password file: {exc}") from exc
        lines = text.splitlines()
        if not lines or not lines[0]:
            raise ConfigError("the password file is empty")
        check_password_policy(lines[0])
        return lines[0]
    if not sys.stdin.isatty():
        raise ConfigError("no terminal to ask for a password: give --password-file")
    first = getpass.getpass(f"{prompt}: ")
    check_password_policy(first)
    second = getpass.getpass(f"{prompt} (again): ")
    if first != second:
        raise ConfigError("the two passwords differ")
    return first


def _read_passphrase(path: str | None, prompt: str, *, twice: bool) -> bytes | None:
    """A CA key's passphrase: the file's first line, else a prompt on a terminal, else None."""
    if path is not None:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"cannot read the passphrase file: {exc}") from exc
        if not lines or not lines[0]:
            raise ConfigError("the passphrase file is empty")
        return lines[0].encode("utf-8")
    if not sys.stdin.isatty():
        return None
    first = getpass.getpass(f"{prompt}: ")
    if twice and first != getpass.getpass(f"{prompt} (again): "):
        raise ConfigError("the two passphrases differ")
    return first.encode("utf-8") or None


# --- init -------------------------------------------------------------------------------------


def initialise(
    data_dir: Path,
    *,
    admin: str,
    password: str,
    jpki_ca: list[str] | None = None,
    jpki_crl: list[str] | None = None,
    hostnames: list[str] | None = None,
    database: str | None = None,
    ca_passphrase: bytes | None = None,
    record_key_file: str | None = None,
) -> ServerConfig:
    """First run: CAs, the server certificate, the record key, settings and the administrator.

    ``ca_passphrase`` encrypts both CA keys (the running server needs neither);
    ``record_key_file`` puts the record key elsewhere than the data directory.
    """
    from clinic.access_log import Seal
    from clinic.at_rest import RecordCipher
    from clinic.outbox_key import create_outbox_key
    from clinic.server import open_database
    from clinic.staff import StaffAccounts, check_password_policy

    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    config = config_from(data_dir, {"database": database})
    paths = config.paths
    if paths.server_ca.exists() or paths.device_ca.exists():
        raise ConfigError(f"{data_dir} is initialised already")
    check_password_policy(password)
    settings: dict[str, Any] = {
        "jpki_ca_files": [str(Path(p).resolve()) for p in jpki_ca or []],
        "jpki_crl_sources": [
            s if s.startswith(("http://", "https://")) else str(Path(s).resolve())
            for s in jpki_crl or []
        ],
        "database": database,
        "record_key_file": str(Path(record_key_file).resolve()) if record_key_file else None,
    }
    tls_ca = CertificateAuthority.create("Onshi Kiosk clinic server CA")
    tls_ca.save(paths.server_ca, paths.server_ca_key, passphrase=ca_passphrase)
    server_key = new_device_key()
    names = list(dict.fromkeys([*DEFAULT_HOSTNAMES, *(hostnames or [])]))
    server_cert = tls_ca.issue_server(server_key, names)
    write_private(paths.server_key, key_pem(server_key))
    paths.server_cert.write_bytes(cert_pem(server_cert))
    device_ca = CertificateAuthority.create("Onshi Kiosk clinic device CA")
    device_ca.save(paths.device_ca, paths.device_ca_key, passphrase=ca_passphrase)
    create_outbox_key(data_dir)  # the key pair kiosks seal their logs to
    save_settings(data_dir, settings)
    RecordCipher.create(config_from(data_dir, {}).record_key_path)
    db = open_database(config)
    try:
        staff = StaffAccounts(db, clock=time.time)
        if staff.count() == 0:
            staff.add(admin, password, is_admin=True)
        Seal.open(paths.access_log_key, paths.access_log_anchor, db)  # the access log's key
    finally:
        db.close()
    return config_from(data_dir, {})


def cmd_init(args: argparse.Namespace) -> int:
    from clinic.outbox_key import outbox_key_paths

    data_dir = Path(args.data_dir)
    if DataDir(data_dir).server_ca.exists() or DataDir(data_dir).device_ca.exists():
        raise ConfigError(f"{data_dir} is initialised already")
    password = _read_password(args, f"password for the administrator {args.admin}")
    passphrase = _read_passphrase(
        args.ca_passphrase_file, "passphrase for the CA keys (empty: none)", twice=True
    )
    config = initialise(
        data_dir,
        admin=args.admin,
        password=password,
        jpki_ca=args.jpki_ca,
        jpki_crl=args.jpki_crl,
        hostnames=args.hostname,
        database=args.database,
        ca_passphrase=passphrase,
        record_key_file=args.record_key,
    )
    print(f"initialised {data_dir}")
    print(f"  kiosks pin the server CA: {config.paths.server_ca}")
    print(f"  administrator: {args.admin}")
    print(f"  kiosks seal their logs to: {outbox_key_paths(data_dir)[1]}")
    print(f"  record key (back it up apart from the database): {config.record_key_path}")
    if passphrase is None:
        print(
            f"  the CA keys have no passphrase: the server does not need them, move "
            f"{config.paths.device_ca_key.name} and {config.paths.server_ca_key.name} off this "
            "machine (device issue --ca-key finds the device CA's key where it is kept)"
        )
    if not args.jpki_ca:
        print("  no JPKI CA yet: give serve --jpki-ca (and --jpki-crl)")
    return 0


# --- serve ------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from clinic.server import ClinicServer, build_context, new_event_loop

    overrides: dict[str, Any] = {
        "host": args.host,
        "kiosk_port": args.kiosk_port,
        "staff_port": args.staff_port,
        "jpki_ca_files": args.jpki_ca or None,
        "jpki_crl_sources": args.jpki_crl or None,
        "crl_refresh_s": args.crl_refresh,
        "national_latency_ms": args.national_latency_ms,
        "national_jitter_ms": args.national_jitter_ms,
        "national_failure_rate": args.national_failure_rate,
        "national_down": True if args.national_down else None,
        "log_level": args.log_level,
    }
    config = config_of(args, **overrides).validated()
    configure_logging(
        config.log_level, config.timezone, "%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    context = build_context(config)
    server = ClinicServer(config, context, staff_process=True)
    print(
        f"kiosk API  https://{config.host}:{server.kiosk_port}/api/v1 (mutual TLS)\n"
        f"dashboard  https://{config.host}:{server.staff_port}/",
        flush=True,
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, server.stop)
        await server.serve()

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main())
    return 0


# --- devices ----------------------------------------------------------------------------------


def _registry(args: argparse.Namespace) -> Any:
    from cryptography import x509

    from clinic.devices import DeviceRegistry
    from clinic.server import open_database

    config = config_of(args)
    if not config.paths.device_ca.is_file():
        raise ConfigError(f"{config.paths.device_ca} is missing: run `clinic-server init`")
    db = open_database(config)
    ca_cert = x509.load_pem_x509_certificate(config.paths.device_ca.read_bytes())
    return config, db, DeviceRegistry(db, ca_cert, clock=time.time)


def _device_ca(config: ServerConfig, args: argparse.Namespace) -> CertificateAuthority:
    """The device CA with its key: from ``--ca-key`` or the data directory, opened with the
    passphrase (``--ca-passphrase-file``, or asked for on a terminal) when it has one."""
    key_path = Path(args.ca_key) if args.ca_key else config.paths.device_ca_key
    if not key_path.is_file():
        raise ConfigError(
            f"the device CA's key is not at {key_path}: give --ca-key where it is kept"
        )
    passphrase = (
        _read_passphrase(args.ca_passphrase_file, "passphrase", twice=False)
        if args.ca_passphrase_file
        else None
    )
    try:
        return CertificateAuthority.load(config.paths.device_ca, key_path, passphrase=passphrase)
    except ValueError:
        if passphrase is not None or not sys.stdin.isatty():
            raise ConfigError(
                f"the device CA's key {key_path} does not open: wrong or missing passphrase "
                "(--ca-passphrase-file)"
            ) from None
    asked = _read_passphrase(None, f"passphrase of {key_path}", twice=False)
    try:
        return CertificateAuthority.load(config.paths.device_ca, key_path, passphrase=asked)
    except ValueError:
        raise ConfigError(f"the passphrase does not open {key_path}") from None


def cmd_device(args: argparse.Namespace) -> int:
    config, db, registry = _registry(args)
    try:
        if args.device_command == "issue":
            from clinic import device_bundle

            prepared = device_bundle.prepare_bundle(config, args) if args.bundle else None
            ca = _device_ca(config, args)
            issued = registry.issue(ca, args.name)
            if prepared is not None:
                bundle = Path(args.bundle)
                device_bundle.write_bundle(
                    bundle,
                    args.name,
                    prepared,
                    certificate_pem=cert_pem(issued.certificate),
                    key_pem=issued.key_pem,
                )
                print(f"device {args.name}: enrolment bundle {bundle} (0600)")
            if args.out is not None or prepared is None:
                out = Path(args.out or ".")
                out.mkdir(parents=True, exist_ok=True)
                cert_path, key_path = out / f"{args.name}.pem", out / f"{args.name}.key.pem"
                write_private(key_path, issued.key_pem)
                cert_path.write_bytes(cert_pem(issued.certificate))
                ca_copy = out / "clinic-server-ca.pem"
                ca_copy.write_bytes(config.paths.server_ca.read_bytes())
                print(f"device {args.name}: {cert_path}, {key_path} (0600); server CA: {ca_copy}")
        elif args.device_command == "revoke":
            count = registry.revoke(args.name)
            if count == 0:
                print(f"no valid certificate of {args.name!r} to revoke", file=sys.stderr)
                return 1
            print(f"revoked {count} certificate(s) of {args.name}")
        else:
            devices = registry.list()
            if args.json:
                print(json.dumps(devices, ensure_ascii=False, indent=1, default=str))
            for d in [] if args.json else devices:
                state = "revoked" if d["revoked"] else "active"
                seen = clinic_time(d["last_seen"], config.timezone) if d["last_seen"] else "never"
                print(f"{d['device_id']:24} {state:8} last seen {seen}")
    finally:
        db.close()
    return 0


# --- staff ------------------------------------------------------------------------------------


def cmd_staff(args: argparse.Namespace) -> int:
    from clinic.server import open_database
    from clinic.staff import StaffAccounts

    db = open_database(config_of(args))
    try:
        staff = StaffAccounts(db, clock=time.time)
        if args.staff_command == "add":
            staff.add(
                args.name, _read_password(args, f"password for {args.name}"), is_admin=args.admin
            )
            print(f"added {args.name}{' (administrator)' if args.admin else ''}")
        elif args.staff_command == "password":
            staff.set_password(args.name, _read_password(args, f"new password for {args.name}"))
            print(f"password of {args.name} changed; their sessions ended")
        else:
            for row in staff.list():
                role = "admin" if row["is_admin"] else "staff"
                print(f"{row['username']:24} {role}")
    finally:
        db.close()
    return 0


# --- the parser -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from clinic import device_bundle

    parser = argparse.ArgumentParser(
        prog="clinic-server", description="Set up, run and manage the clinic server."
    )
    parser.add_argument(
        "--data-dir",
        default=str(default_data_dir()),
        metavar="DIR",
        help="settings, keys and the SQLite database (default: $ONSHI_CLINIC_DATA or "
        "/var/lib/onshi-clinic)",
    )
    parser.add_argument(
        "--database",
        default=None,
        metavar="URL",
        help="postgresql://... instead of SQLite in the data directory",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    init = commands.add_parser("init", help="first run: CAs, server certificate, admin account")
    init.add_argument(
        "--jpki-ca",
        action="append",
        default=[],
        metavar="PEM",
        help="a JPKI user-authentication CA certificate to trust (repeatable)",
    )
    init.add_argument(
        "--jpki-crl",
        action="append",
        default=[],
        metavar="PATH_OR_URL",
        help="where its CRL is published (repeatable)",
    )
    init.add_argument("--admin", default="admin", help="the first staff account (administrator)")
    init.add_argument(
        "--password-file",
        default=None,
        metavar="FILE",
        help="the administrator's password on the file's first line (default: asked for "
        "twice on a terminal)",
    )
    init.add_argument(
        "--hostname",
        action="append",
        default=[],
        metavar="NAME",
        help="another name or address for the server certificate (repeatable)",
    )
    init.add_argument(
        "--ca-passphrase-file",
        default=None,
        metavar="FILE",
        help="encrypt both CA keys with the passphrase on the file's first line (on a "
        "terminal it is asked for; the running server needs neither key)",
    )
    init.add_argument(
        "--record-key",
        default=None,
        metavar="PATH",
        help="where the record key goes (default: record.key in the data directory)",
    )
    init.set_defaults(func=cmd_init)

    serve = commands.add_parser("serve", help="run the kiosk API and the dashboard")
    serve.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    serve.add_argument(
        "--kiosk-port", type=int, default=None, help="kiosk API, mutual TLS (default 8443)"
    )
    serve.add_argument(
        "--staff-port", type=int, default=None, help="staff dashboard, TLS + login (default 8444)"
    )
    serve.add_argument(
        "--jpki-ca",
        action="append",
        default=[],
        metavar="PEM",
        help="trust this JPKI user-authentication CA instead of those of init (repeatable)",
    )
    serve.add_argument(
        "--jpki-crl",
        action="append",
        default=[],
        metavar="PATH_OR_URL",
        help="read the CRLs from here instead of the sources of init (repeatable)",
    )
    serve.add_argument(
        "--crl-refresh",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how often CRLs are fetched again (default 3600)",
    )
    serve.add_argument(
        "--national-latency-ms",
        type=float,
        default=None,
        metavar="MS",
        help="the simulated national system answers after this long (default 0)",
    )
    serve.add_argument(
        "--national-jitter-ms",
        type=float,
        default=None,
        metavar="MS",
        help="and up to this much longer, at random (default 0)",
    )
    serve.add_argument(
        "--national-failure-rate",
        type=float,
        default=None,
        metavar="0..1",
        help="the share of questions the simulated national system fails (default 0)",
    )
    serve.add_argument(
        "--national-down", action="store_true", help="the simulated national system answers nothing"
    )
    serve.add_argument(
        "--log-level",
        default=None,
        choices=["debug", "info", "warning", "error"],
        help="the least important log lines shown (default info)",
    )
    serve.set_defaults(func=cmd_serve)

    device = commands.add_parser("device", help="kiosk certificates")
    device_commands = device.add_subparsers(dest="device_command", required=True)
    issue = device_commands.add_parser("issue", help="a certificate and key for a kiosk")
    issue.add_argument("name", help="the kiosk's name: letters, digits, - and _")
    issue.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="where NAME.pem, NAME.key.pem and the server CA go (default: here, unless "
        "--bundle is given)",
    )
    issue.add_argument(
        "--ca-key",
        default=None,
        metavar="PEM",
        help="the device CA's key, where it is kept (default: in the data directory)",
    )
    issue.add_argument(
        "--ca-passphrase-file",
        default=None,
        metavar="FILE",
        help="the CA key's passphrase (first line); on a terminal it is asked for",
    )
    device_bundle.add_bundle_arguments(issue)
    revoke = device_commands.add_parser("revoke", help="refuse a kiosk from now on")
    revoke.add_argument("name", help="the kiosk's name")
    listing = device_commands.add_parser("list", help="the kiosks, their state and last contact")
    listing.add_argument("--json", action="store_true", help="as JSON")
    device.set_defaults(func=cmd_device)

    staff = commands.add_parser("staff", help="staff accounts")
    staff_commands = staff.add_subparsers(dest="staff_command", required=True)
    add = staff_commands.add_parser("add", help="a staff account")
    add.add_argument("name", help="the login name")
    add.add_argument("--admin", action="store_true", help="an administrator (sees the access log)")
    add.add_argument(
        "--password-file",
        default=None,
        metavar="FILE",
        help="the password on the file's first line (default: asked for twice)",
    )
    password = staff_commands.add_parser(
        "password", help="set a new password (the account's sessions end)"
    )
    password.add_argument("name", help="the login name")
    password.add_argument(
        "--password-file",
        default=None,
        metavar="FILE",
        help="the password on the file's first line (default: asked for twice)",
    )
    staff_commands.add_parser("list", help="the accounts and their roles")
    staff.set_defaults(func=cmd_staff)

    from clinic import db_cli, doctor, outbox_key, records_cli

    records_cli.add_parsers(commands)
    db_cli.add_parsers(commands)
    outbox_key.add_parser(commands)
    doctor.add_parser(commands)

    for plugin in entry_points(group=COMMAND_PLUGINS):
        plugin.load()(commands)  # the testbed's ``bench``, when it is installed
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (
        args.command == "national"
        and args.national_command == "revoke"
        and args.card_id is None
        and (args.issuer is None or args.serial is None)
    ):
        parser.error("national revoke needs --card-id, or --issuer and --serial")
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"clinic-server: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"clinic-server: {exc}", file=sys.stderr)
        return 2
    except StorageError as exc:
        print(f"clinic-server: database: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
