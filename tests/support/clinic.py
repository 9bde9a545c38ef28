"""What the clinic tests share: starting a real server, kiosks, databases, a movable clock.

The fixtures themselves are in ``conftest.py``; this module has a name of its own so the
tests can import from it.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from clinic.cli import initialise
from clinic.config import ServerConfig, config_from
from clinic.context import ClinicContext
from clinic.devices import DeviceRegistry
from clinic.national.interface import NationalConnector
from clinic.national.simulated import load_insured, read_insured_jsonl
from clinic.pki import CertificateAuthority, cert_pem, write_private
from clinic.server import ClinicServer, ServerThread, build_context, open_database
from contract.challenge import Mode, signed_message
from contract.device_signing import DeviceIdentity
from kiosk.clinic_client import ClinicClient, VerificationResult, make_http_client
from kiosk.sim.population import Population
from kiosk.sim.profile import CardProfile

BACKENDS = ("sqlite", "postgresql")
PG_URL_FILE = Path(os.environ.get("ONSHI_TEST_PG_URL_FILE", "/run/onshi-test-postgres.url"))


# --- the population -------------------------------------------------------------------------


# --- databases ------------------------------------------------------------------------------


def postgres_url() -> str:
    """The test role's URL; fails the test (never skips) when PostgreSQL is not there."""
    url = os.environ.get("ONSHI_TEST_DATABASE_URL")
    if not url:
        try:
            url = PG_URL_FILE.read_text(encoding="utf-8").strip()
        except OSError:
            pytest.fail(
                f"PostgreSQL for the tests is not set up ({PG_URL_FILE} is missing): "
                "run `sh tests/services/postgres.sh` (`make services` does it)",
                pytrace=False,
            )
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL for the tests does not answer ({exc}): "
            "run `sh tests/services/postgres.sh` (`make services` does it)",
            pytrace=False,
        )
    return url


@contextlib.contextmanager
def fresh_database(backend: str) -> Iterator[str | None]:
    """None for SQLite (a file in the data dir), or the URL of a new PostgreSQL database."""
    if backend == "sqlite":
        yield None
        return
    import psycopg
    from psycopg import sql

    base = postgres_url()
    name = f"onshi_t_{secrets.token_hex(6)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    head, _, _ = base.rpartition("/")
    try:
        yield f"{head}/{name}"
    finally:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        with psycopg.connect(base, autocommit=True) as conn:
            for attempt in range(20):
                try:
                    conn.execute(drop)
                    break
                except psycopg.errors.InsufficientPrivilege:
                    # an autovacuum worker in the database, on a server where the role may
                    # not end it (tests/services/postgres.sh grants that): it ends soon
                    if attempt == 19:
                        raise
                    time.sleep(0.25)


# --- a clock the tests can move -------------------------------------------------------------


@dataclass
class OffsetClock:
    """Wall-clock time plus an offset the test sets (e.g. to let a nonce expire)."""

    offset: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


# --- kiosks ---------------------------------------------------------------------------------


def sign_for(profile: CardProfile, nonce: bytes, device_id: str, mode: Mode) -> bytes:
    """What the card computes: RSA PKCS#1 v1.5 SHA-256 over the challenge message."""
    return profile.user_auth_key().sign(
        signed_message(nonce, device_id, mode), padding.PKCS1v15(), hashes.SHA256()
    )


def pin_check_by_issued_kiosk(
    kiosk_port: int, issued: Path, device_id: str, population: Population
) -> VerificationResult:
    """A PIN check of a valid card by a kiosk that ``clinic-server device issue`` wrote into
    ``issued``, against the server listening for kiosks on ``kiosk_port``."""
    cert, key = issued / f"{device_id}.pem", issued / f"{device_id}.key.pem"
    http = make_http_client(
        f"https://127.0.0.1:{kiosk_port}",
        ca_file=issued / "clinic-server-ca.pem",
        identity=DeviceIdentity.load(cert, key),
        client_cert_file=cert,
        client_key_file=key,
    )
    with ClinicClient(http) as client:
        profile = population.card("valid-national").load_profile()
        challenge = client.challenge()
        return client.verify(
            challenge.nonce,
            "pin",
            profile.user_auth_certificate,
            sign_for(profile, challenge.nonce, device_id, "pin"),
        )


@dataclass
class Kiosk:
    device_id: str
    cert_path: Path
    key_path: Path
    identity: DeviceIdentity
    client: ClinicClient
    http: httpx.Client

    def check(self, profile: CardProfile, mode: Mode = "pin") -> VerificationResult:
        """A whole check as the kiosk makes it: challenge, card signature, verify."""
        challenge = self.client.challenge()
        signature = (
            sign_for(profile, challenge.nonce, self.device_id, mode) if mode == "pin" else None
        )
        assert profile.user_auth_certificate is not None
        return self.client.verify(challenge.nonce, mode, profile.user_auth_certificate, signature)

    def close(self) -> None:
        self.client.close()


# --- the server -----------------------------------------------------------------------------


@dataclass
class Clinic:
    """A running clinic server and what the tests need around it."""

    backend: str
    config: ServerConfig
    context: ClinicContext
    server: ClinicServer
    thread: ServerThread
    clock: OffsetClock
    population: Population
    root: Path
    admin: str
    admin_password: str
    kiosks: dict[str, Kiosk] = field(default_factory=dict)

    @property
    def kiosk_url(self) -> str:
        return f"https://127.0.0.1:{self.server.kiosk_port}"

    @property
    def staff_url(self) -> str:
        return f"https://127.0.0.1:{self.server.staff_port}"

    @property
    def server_ca(self) -> Path:
        return self.config.paths.server_ca

    def device_ca(self) -> CertificateAuthority:
        paths = self.config.paths
        return CertificateAuthority.load(paths.device_ca, paths.device_ca_key)

    def issue_device(self, name: str) -> tuple[Path, Path]:
        """A registered device certificate and key for ``name`` (like `device issue`)."""
        registry: DeviceRegistry = self.context.devices
        issued = registry.issue(self.device_ca(), name)
        out = self.root / "devices"
        out.mkdir(exist_ok=True)
        cert_path, key_path = out / f"{name}.pem", out / f"{name}.key.pem"
        write_private(key_path, issued.key_pem)
        cert_path.write_bytes(cert_pem(issued.certificate))
        return cert_path, key_path

    def kiosk(self, name: str = "kiosk-1") -> Kiosk:
        """A kiosk with its own device certificate (made once per name)."""
        if name not in self.kiosks:
            cert_path, key_path = self.issue_device(name)
            self.kiosks[name] = self.connect(cert_path, key_path)
        return self.kiosks[name]

    def connect(
        self,
        cert_path: Path,
        key_path: Path,
        *,
        identity: DeviceIdentity | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Kiosk:
        identity = identity or DeviceIdentity.load(cert_path, key_path)
        http = make_http_client(
            self.kiosk_url,
            ca_file=self.server_ca,
            identity=identity,
            client_cert_file=cert_path,
            client_key_file=key_path,
            clock=clock,
        )
        return Kiosk(
            identity.device_id, cert_path, key_path, identity, ClinicClient(http, retries=0), http
        )

    def card(self, outcome: str) -> CardProfile:
        return self.population.card(outcome).load_profile()

    def staff_client(self) -> httpx.Client:
        """A plain HTTPS client for the dashboard (no session yet)."""
        return httpx.Client(
            base_url=self.staff_url,
            verify=ssl.create_default_context(cafile=str(self.server_ca)),
            follow_redirects=False,
            timeout=10,
        )

    def login(
        self, client: httpx.Client, username: str | None = None, password: str | None = None
    ) -> httpx.Response:
        page = client.get("/login")
        csrf = hidden(page.text, "csrf")
        return client.post(
            "/login",
            data={
                "csrf": csrf,
                "username": username or self.admin,
                "password": password or self.admin_password,
                "next": "/",
            },
        )


def hidden(html: str, name: str) -> str:
    marker = f'name="{name}" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def concrete(path: str) -> str:
    """A route template with its parameters filled in."""
    return re.sub(r"\{[^}]+\}", "0123456789abcdef0123456789abcdef", path).replace(":path", "")


def csrf_of(client: httpx.Client) -> str:
    """The session's CSRF token, as a signed-in page's forms carry it."""
    return hidden(client.get("/queue").text, "csrf")


def start_clinic(
    backend: str,
    population: Population,
    root: Path,
    database: str | None,
    *,
    clock: OffsetClock | None = None,
    connector: NationalConnector | None = None,
    **overrides: Any,
) -> Clinic:
    """A running server; its simulated national system answers from the clinic's database,
    unless a ``connector`` is given (then the clinic's database holds none of its data)."""
    clock = clock or OffsetClock()
    admin_password = secrets.token_urlsafe(16)
    data_dir = root / "clinic"
    initialise(
        data_dir,
        admin="admin",
        password=admin_password,
        jpki_ca=[str(population.ca_directory / "jpki-ca.pem")],
        jpki_crl=[str(population.crl_path)],
        database=database,
    )
    config = config_from(
        data_dir, {"kiosk_port": 0, "staff_port": 0, "log_level": "warning", **overrides}
    ).validated()
    if connector is None:
        db = open_database(config)
        try:
            load_insured(db, read_insured_jsonl(population.insured_path), now=time.time())
        finally:
            db.close()
    context = build_context(config, clock=clock, connector=connector)
    server = ClinicServer(config, context)
    thread = ServerThread(server).start()
    return Clinic(
        backend, config, context, server, thread, clock, population, root, "admin", admin_password
    )


@contextlib.contextmanager
def database_unavailable(clinic: Clinic) -> Iterator[None]:
    """The server's database stops serving it until the block ends.

    SQLite: another connection holds the write lock, so the server's writers wait out their
    busy timeout (10 s) and fail with "database is locked" (reads go on, as WAL allows).
    PostgreSQL: the database refuses new connections and the server's are ended, so every
    query fails at once. Either way the storage raises a temporary ``StorageError``.
    """
    if clinic.backend == "sqlite":
        import sqlite3

        path = clinic.context.db.url_for_display.removeprefix("sqlite://")
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                holder.execute("ROLLBACK")
        finally:
            holder.close()
        return
    import psycopg
    from psycopg import sql

    url = clinic.config.database
    assert url is not None
    name = url.rpartition("/")[2]
    with psycopg.connect(postgres_url(), autocommit=True) as admin:
        admin.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name))
        )
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            yield
        finally:
            admin.execute(
                sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(name))
            )


def stop_clinic(clinic: Clinic) -> None:
    for kiosk in clinic.kiosks.values():
        kiosk.close()
    clinic.thread.stop()


def certificate_of(profile: CardProfile) -> x509.Certificate:
    return profile.certificate()
