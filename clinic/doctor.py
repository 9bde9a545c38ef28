"""``clinic-server doctor [--json] [--silent-after SECONDS]``: is the clinic server healthy?

One line per check (ok / warning / failed) with what to do; ``--json`` prints a list of
``{name, state, detail, advice}``; the exit status is 1 when a check failed. The checks:

- the TLS certificate kiosks and browsers see, the server CA kiosks pin, the device CA and the
  JPKI CAs: failed when expired, warning within 30 days;
- the JPKI CRLs: fetched from their sources as the server does; failed when one cannot be
  loaded or is past its next update (revoked cards would pass), warning without any CRL;
- the database (SQLite or PostgreSQL) answering a query;
- free space where the data directory is;
- the national connector: the simulated system (a demo, so a warning), or the deployment's
  connector loading;
- each kiosk's last contact: warning when it has been silent longer than ``--silent-after``
  (default 300 s; kiosks send a heartbeat every minute) or never called, and its certificate's
  expiry.

Every check is a function taking what it looks at (paths, a database, a clock), so tests point
it at folders and real servers. Nothing here changes the database or any file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography import x509

from clinic.config import ServerConfig
from contract.self_check import Finding, exit_status, to_json, to_text
from contract.self_check import failed as _failed
from contract.self_check import ok as _ok
from contract.self_check import warning as _warning

EXPIRY_WARNING = dt.timedelta(days=30)
SILENT_AFTER_S = 300.0
MIB = 1024 * 1024
#: Less free space than this where the database lives fails the check.
DISK_NEEDED_BYTES = 256 * MIB


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- certificates -----------------------------------------------------------------------------


def check_certificate_file(
    name: str, path: Path, advice: str, *, now: dt.datetime | None = None
) -> Finding:
    """Every certificate in the PEM file ``path``: expired fails, 30 days left warns."""
    now = now or _now()
    try:
        certificates = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as exc:
        return _failed(name, f"cannot read {path}: {exc}", advice)
    soonest = min(certificates, key=lambda c: c.not_valid_after_utc)
    until = soonest.not_valid_after_utc
    left = until - now
    detail = f"{path.name} valid until {until:%Y-%m-%d} ({left.days} days left)"
    if left <= dt.timedelta(0):
        return _failed(name, f"{path.name} expired on {until:%Y-%m-%d}", advice)
    if left < EXPIRY_WARNING:
        return _warning(name, detail, advice + " before it expires")
    return _ok(name, detail)


def check_server_chain(config: ServerConfig) -> Finding:
    """The server certificate is signed by the CA kiosks pin."""
    from cryptography.exceptions import InvalidSignature

    name = "tls chain"
    paths = config.paths
    try:
        leaf = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
        ca = x509.load_pem_x509_certificate(paths.server_ca.read_bytes())
        leaf.verify_directly_issued_by(ca)
    except (OSError, ValueError, TypeError, InvalidSignature) as exc:
        return _failed(
            name,
            f"{paths.server_cert.name} is not signed by {paths.server_ca.name} ({exc})",
            "kiosks pin server-ca.pem: issue the server certificate from it again",
        )
    return _ok(name, f"{paths.server_cert.name} is signed by {paths.server_ca.name}")


# --- revocation lists -------------------------------------------------------------------------


def check_crls(
    ca_files: Sequence[Path],
    crl_sources: Sequence[str],
    *,
    now: dt.datetime | None = None,
    fetch: Callable[[str], bytes] | None = None,
) -> list[Finding]:
    from clinic.jpki import JpkiTrust

    now = now or _now()
    advice = (
        "check the CRL sources (jpki_crl_sources in clinic.toml) are reachable and current; "
        "the server refreshes them every crl_refresh_s"
    )
    if not crl_sources:
        return [
            _warning(
                "crl",
                "no CRL source configured: revoked cards are not refused",
                "add the JPKI CAs' CRLs (init --jpki-crl, jpki_crl_sources in clinic.toml)",
            )
        ]
    try:
        cas: list[x509.Certificate] = []
        for path in ca_files:
            cas.extend(x509.load_pem_x509_certificates(path.read_bytes()))
    except (OSError, ValueError) as exc:
        return [_failed("crl", f"cannot read the JPKI CAs: {exc}", "fix jpki_ca_files")]
    trust = JpkiTrust(cas, crl_sources, fetch=fetch)
    trust.refresh(now)
    findings = []
    if trust.last_error:
        findings.append(_failed("crl", trust.last_error[:300], advice))
    loaded = {state.source: state for state in trust.crl_status()}
    for source in crl_sources:
        state = loaded.get(source)
        if state is None:
            if not trust.last_error:
                findings.append(_failed("crl", f"{source}: no CRL loaded", advice))
            continue
        shown = source if len(source) <= 60 else "..." + source[-57:]
        if state.next_update is not None and now > state.next_update:
            findings.append(
                _failed(
                    "crl",
                    f"{shown}: stale, its next update was due {state.next_update:%Y-%m-%d %H:%M}"
                    " UTC (revoked cards are not refused)",
                    advice,
                )
            )
        else:
            due = f"{state.next_update:%Y-%m-%d %H:%M} UTC" if state.next_update else "-"
            findings.append(
                _ok(
                    "crl",
                    f"{shown}: issued {state.this_update:%Y-%m-%d %H:%M} UTC, next update "
                    f"{due}, {len(state.revoked)} revoked",
                )
            )
    return findings


# --- the database, the disk, the connector ------------------------------------------------------


def check_database(config: ServerConfig) -> tuple[Finding, Any]:
    """The database answers a query; the open database (or None) for the next checks."""
    from clinic.storage import Database

    name = "database"
    where = "PostgreSQL" if config.database else f"SQLite {config.paths.sqlite}"
    if config.database is None and not config.paths.sqlite.is_file():
        return (
            _failed(name, f"{config.paths.sqlite} does not exist", "run `clinic-server init`"),
            None,
        )
    advice = (
        "is PostgreSQL running (systemctl status postgresql) and the URL (database in "
        "clinic.toml) right? see its log"
        if config.database
        else "check the data directory's owner and free space; `clinic-server serve` "
        "migrates a new database"
    )
    try:
        db = Database.open(config.database_url, pool_size=1)
    except Exception as exc:
        return (
            _failed(name, f"{where} does not open: {type(exc).__name__}: {str(exc)[:200]}", advice),
            None,
        )
    try:
        started = time.perf_counter()
        with db.transaction() as tx:
            row = tx.one("SELECT count(*) AS n FROM devices")
        elapsed = (time.perf_counter() - started) * 1000
    except Exception as exc:
        db.close()
        return (
            _failed(
                name,
                f"{where} does not answer: {type(exc).__name__}: {str(exc)[:200]}",
                advice,
            ),
            None,
        )
    devices = row["n"] if row else 0
    return _ok(name, f"{where} answers ({devices} kiosks, {elapsed:.0f} ms)"), db


def check_disk(
    path: Path,
    *,
    needed_bytes: int = DISK_NEEDED_BYTES,
    statvfs: Callable[[Path], os.statvfs_result] = os.statvfs,
) -> Finding:
    name = "disk"
    try:
        stat = statvfs(path)
    except OSError as exc:
        return _failed(name, f"cannot look at {path}: {exc.strerror or exc}", "check the mount")
    free = stat.f_bavail * stat.f_frsize
    total = stat.f_blocks * stat.f_frsize
    share = free / total if total else 0.0
    detail = f"{free // MIB} MiB free of {total // MIB} MiB ({share:.0%}) at {path}"
    advice = (
        "free space where the data directory is: old journal logs, backups; "
        "`clinic-server purge` reduces old records"
    )
    if free < needed_bytes:
        return _failed(name, detail, advice)
    if share < 0.10:
        return _warning(name, detail, advice)
    return _ok(name, detail)


def check_connector(config: ServerConfig, db: Any) -> Finding:
    name = "national"
    if config.connector == "simulated":
        if config.national_down:
            return _failed(
                name,
                "the simulated national system is set to answer nothing (national_down)",
                "remove national_down from clinic.toml",
            )
        return _warning(
            name,
            "the simulated national system (a demo: no real eligibility records)",
            'set connector = "package.module:factory" in clinic.toml for the authorised connector',
        )
    from clinic.server import build_connector

    try:
        connector = build_connector(config, db)
    except Exception as exc:
        return _failed(
            name,
            f"the connector {config.connector} does not load: {type(exc).__name__}: {exc}",
            "check connector in clinic.toml and that its package is installed",
        )
    check = getattr(connector, "check", None)
    if callable(check):
        try:
            check()
        except Exception as exc:
            return _failed(
                name,
                f"{config.connector}: {type(exc).__name__}: {str(exc)[:200]}",
                "see the connector's documentation; check the line to the national system",
            )
    return _ok(name, f"{config.connector} loaded")


# --- kiosks -----------------------------------------------------------------------------------


def check_kiosks(
    config: ServerConfig,
    db: Any,
    *,
    now: float | None = None,
    silent_after_s: float = SILENT_AFTER_S,
) -> list[Finding]:
    """One line per kiosk with a valid certificate: its last contact and certificate expiry."""
    from clinic.devices import DeviceRegistry

    now = now if now is not None else time.time()
    ca = x509.load_pem_x509_certificate(config.paths.device_ca.read_bytes())
    devices = [d for d in DeviceRegistry(db, ca, clock=time.time).list() if not d["revoked"]]
    if not devices:
        return [
            _warning(
                "kiosks",
                "no kiosk is enrolled",
                "clinic-server device issue NAME --out DIR, then install the files on the kiosk",
            )
        ]
    findings = []
    for d in devices:
        name = f"kiosk {d['device_id']}"
        last = d["last_seen"]
        not_after = d["not_after"]
        expiry = ""
        expiring = False
        if not_after is not None:
            days = (float(not_after) - now) / 86400
            expiry = f"; certificate {days:.0f} days left"
            expiring = days < EXPIRY_WARNING.days
        if last is None:
            findings.append(
                _warning(
                    name,
                    "never contacted the server" + expiry,
                    f"on the kiosk: kiosk doctor (is {d['device_id']} installed and running?)",
                )
            )
            continue
        silent = now - float(last)
        seen = f"last contact {silent:.0f} s ago"
        if silent > silent_after_s:
            findings.append(
                _warning(
                    name,
                    f"silent: {seen}" + expiry,
                    "is the kiosk on and on the network? on the kiosk: kiosk doctor",
                )
            )
        elif expiring:
            findings.append(
                _warning(
                    name,
                    seen + expiry,
                    f"clinic-server device issue {d['device_id']} --out DIR before it expires",
                )
            )
        else:
            findings.append(_ok(name, seen + expiry))
    return findings


# --- all of them ------------------------------------------------------------------------------


def run_checks(
    config: ServerConfig,
    *,
    now: dt.datetime | None = None,
    silent_after_s: float = SILENT_AFTER_S,
    statvfs: Callable[[Path], os.statvfs_result] = os.statvfs,
) -> list[Finding]:
    now = now or _now()
    paths = config.paths
    renew = "renew it with the clinic's CA (see clinic/README.md)"
    findings = [
        check_certificate_file("tls certificate", paths.server_cert, renew, now=now),
        check_certificate_file(
            "server ca", paths.server_ca, "every kiosk pins it: plan its replacement", now=now
        ),
        check_certificate_file(
            "device ca", paths.device_ca, "kiosk certificates chain to it: plan a new one", now=now
        ),
        check_server_chain(config),
    ]
    for path in config.jpki_ca_files:
        findings.append(
            check_certificate_file(
                "jpki ca", path, "install the JPKI CA's new certificate (jpki_ca_files)", now=now
            )
        )
    if not config.jpki_ca_files:
        findings.append(
            _failed("jpki ca", "no JPKI CA configured", "init --jpki-ca, or jpki_ca_files")
        )
    findings += check_crls(config.jpki_ca_files, config.jpki_crl_sources, now=now)
    database, db = check_database(config)
    findings.append(database)
    findings.append(check_disk(config.data_dir, statvfs=statvfs))
    try:
        findings.append(check_connector(config, db))
        if db is not None:
            findings += check_kiosks(config, db, now=now.timestamp(), silent_after_s=silent_after_s)
    finally:
        if db is not None:
            db.close()
    return findings


# --- the command ------------------------------------------------------------------------------


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = subparsers.add_parser(
        "doctor", help="check certificates, CRLs, the database, disk, connector and kiosks"
    )
    doctor.add_argument("--json", action="store_true", help="print JSON")
    doctor.add_argument(
        "--silent-after",
        type=float,
        default=SILENT_AFTER_S,
        metavar="SECONDS",
        help=f"warn about a kiosk silent this long (default {SILENT_AFTER_S:g})",
    )
    doctor.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    from clinic.config import config_of

    config = config_of(args)
    findings = run_checks(config, silent_after_s=args.silent_after)
    print(to_json(findings) if args.json else to_text(findings))
    return exit_status(findings)
