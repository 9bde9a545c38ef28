"""The composition root: builds every part from the settings and runs the two listeners.

Two TLS listeners, both on loopback by default:

- the **kiosk API** (``kiosk_port``, default 8443): mutual TLS, the client certificate must
  come from the clinic's device CA (``CERT_REQUIRED``), and each request is signed by the
  device key (``clinic.kiosk_api.DeviceGate``);
- the **staff dashboard** (``staff_port``, default 8444): server TLS only, so ordinary
  browsers connect; staff log in with a password.

Background tasks refresh the JPKI CRLs on a schedule, purge old challenges and reduce records
older than the retention period to their summary (``clinic.at_rest``).

``clinic-server serve`` runs the dashboard in a process of its own, supervised by the kiosk
API's (``ClinicServer(..., staff_process=True)``, see ``clinic.staff_process``), so nothing
sent to the dashboard can take the kiosk API down; tests and the testbed may run both
listeners on one event loop. Both listeners bound the size and the arrival time of request
heads (``clinic.listeners``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from clinic.access_log import AccessLog, Seal
from clinic.at_rest import RecordCipher, Retention
from clinic.button import ButtonPolicy, StaffButton
from clinic.config import ServerConfig
from clinic.context import ClinicContext
from clinic.crl_store import CrlStore, keep_current
from clinic.dashboard.app import create_staff_app
from clinic.devices import DeviceRegistry
from clinic.eligibility import EligibilityService
from clinic.event_bridge import NoticeBridge
from clinic.events import EventHub
from clinic.extensions import Extension, load_extensions
from clinic.instances import HEARTBEAT_S, InstanceRecord
from clinic.jpki import JpkiTrust
from clinic.kiosk_api import create_kiosk_app
from clinic.listeners import TlsH11Protocol, TlsHttpToolsProtocol, guarded, tls_context
from clinic.migrations import server_schemas
from clinic.national.interface import NationalConnector
from clinic.national.simulated import OutagePlan, SimulatedNationalSystem
from clinic.receipt_files.manual import ManualConfirmations
from clinic.receipt_files.queue import POLL_S, ReceiptQueue
from clinic.staff import StaffAccounts
from clinic.staff_process import StaffSupervisor
from clinic.storage import Database
from contract.errors import ConfigError

log = logging.getLogger(__name__)

PURGE_INTERVAL_S = 600.0
#: On PostgreSQL other instances may be deciding: a claim older than this was interrupted.
RECOVER_AFTER_S = 120.0


def open_database(config: ServerConfig, extensions: Sequence[Extension] = ()) -> Database:
    """The database, with the clinic's and the extensions' tables migrated."""
    db = Database.open(config.database_url, pool_size=config.db_pool_size)
    try:
        db.migrate(server_schemas(extensions))
    except BaseException:
        db.close()
        raise
    return db


def build_connector(config: ServerConfig, db: Database) -> NationalConnector:
    """The national connector: the simulated system, or the factory ``connector`` names.

    This is where a real, authorised connector plugs in: set ``connector =
    "package.module:factory"`` in clinic.toml, ``factory(config, db)`` returning an object
    with ``lookup(issuer, serial) -> NationalAnswer`` (see ``clinic.national.interface``).
    """
    if config.connector != "simulated":
        return load_connector_factory(config.connector)(config, db)
    plan = OutagePlan(
        latency_s=config.national_latency_ms / 1000,
        jitter_s=config.national_jitter_ms / 1000,
        down=config.national_down,
        failure_rate=config.national_failure_rate,
    )
    return SimulatedNationalSystem(db, plan)


def load_connector_factory(spec: str) -> Callable[[ServerConfig, Database], NationalConnector]:
    """``package.module:factory`` -> the factory (for a deployment's real connector)."""
    module_name, _, attribute = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load the connector {spec}: {exc}") from exc
    if not callable(factory):
        raise ConfigError(f"{spec} is not callable")
    return factory  # type: ignore[no-any-return]


def build_context(
    config: ServerConfig,
    *,
    clock: Callable[[], float] = time.time,
    connector: NationalConnector | None = None,
    trust: JpkiTrust | None = None,
    extensions: Sequence[Extension] | None = None,
    recover_interrupted: bool = True,
) -> ClinicContext:
    """Everything the listeners share; ``recover_interrupted=False`` in the dashboard's own
    process, which must not undo decisions the kiosk API's process is making."""
    if extensions is None:
        extensions = load_extensions(config.extensions)
    from cryptography import x509

    cipher = RecordCipher.load(config.record_key_path)
    db = open_database(config, extensions)
    try:
        device_ca = x509.load_pem_x509_certificate(config.paths.device_ca.read_bytes())
        if trust is None:
            trust = JpkiTrust.from_files(config.jpki_ca_files, config.jpki_crl_sources)
            trust.share_through(CrlStore(db))  # what other instances fetched (crl_store)
            trust.refresh()
        events = EventHub()
        connector = connector or build_connector(config, db)
        service = EligibilityService(
            db,
            trust,
            connector,
            clock=clock,
            events=events,
            timezone=config.timezone,
            nonce_ttl_s=config.nonce_ttl_s,
            cipher=cipher,
        )
        access_log = AccessLog(
            db,
            clock=clock,
            seal=Seal.open(config.paths.access_log_key, config.paths.access_log_anchor, db),
        )
        button_policy = ButtonPolicy(
            per_hour=config.button_confirms_per_hour,
            revoke_window_s=config.button_revoke_window_s,
            dashboard_only=config.require_dashboard_confirm,
        )
        context = ClinicContext(
            db=db,
            clock=clock,
            events=events,
            trust=trust,
            connector=connector,
            devices=DeviceRegistry(db, device_ca, clock=clock),
            service=service,
            staff=StaffAccounts(
                db,
                clock=clock,
                idle_timeout_s=config.session_idle_s,
                hash_concurrency=config.login_hash_concurrency,
            ),
            access_log=access_log,
            inline_db=db.backend == "sqlite",
            button=StaffButton(db, service, access_log, button_policy, clock=clock, events=events),
        )
    except BaseException:
        db.close()
        raise
    retention = Retention(db, config.retention_days, clock=clock)
    context.extras["retention"] = retention
    context.extras["record_cipher"] = cipher  # the ingest seals kiosk log payloads with it
    if recover_interrupted:  # the kiosk API's process only, not the dashboard's
        service.recover_interrupted(RECOVER_AFTER_S if db.backend == "postgresql" else 0.0)
        service.seal_existing()
        retention.purge()
    receipts = ReceiptQueue(db, service, config.receipt_settings, clock=clock)
    service.on_completed.append(receipts.submit)
    context.extras["receipt_files"] = receipts
    context.extras["manual_confirmations"] = ManualConfirmations(
        db, service, clock=clock, cipher=cipher
    )
    context.extras.setdefault("config", config)  # extensions find their files through it
    for extension in extensions:
        if extension.on_start is not None:
            extension.on_start(context)
    return context


class _Listener(uvicorn.Server):
    """A uvicorn server that leaves signals to ``ClinicServer`` (two run in one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class _CoalescingTransport:
    """A transport that sends everything written in one event-loop turn as one write.

    uvicorn writes a response's head and body separately; over TLS each write is its own
    record and system call. Joining them saves a fifth of the server's time per request.
    """

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._pending: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _http_implementation() -> Any:
    class CoalescingHttpToolsProtocol(TlsHttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(_CoalescingTransport(transport))  # type: ignore[arg-type]

    return CoalescingHttpToolsProtocol


def listener_config(config: ServerConfig, app: Any, *, mutual: bool) -> uvicorn.Config:
    """uvicorn's settings for the kiosk API (``mutual``) or the staff dashboard.

    The kiosk API runs on httptools (fast), the dashboard on h11, which bounds the request
    head by itself too; both with the bounds of ``clinic.listeners``.
    """
    paths = config.paths
    options: dict[str, Any] = {}
    if mutual:
        options = {"ssl_ca_certs": str(paths.device_ca), "ssl_cert_reqs": ssl.CERT_REQUIRED}
        http = guarded(
            _http_implementation(),
            max_head_bytes=config.max_header_bytes,
            head_timeout_s=config.header_timeout_s,
        )
    else:
        options = {"h11_max_incomplete_event_size": config.max_header_bytes}
        http = guarded(
            TlsH11Protocol,
            max_head_bytes=config.max_header_bytes,
            head_timeout_s=config.header_timeout_s,
        )
    return uvicorn.Config(
        app,
        lifespan="off",
        http=http,
        ssl_certfile=str(paths.server_cert),
        ssl_keyfile=str(paths.server_key),
        ssl_context_factory=tls_context,
        log_level=config.log_level,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=5,
        **options,
    )


@dataclass
class _Bound:
    kiosk: socket.socket
    staff: socket.socket


class ClinicServer:
    """Both listeners and the background tasks; the dashboard in its own process or not."""

    def __init__(
        self,
        config: ServerConfig,
        context: ClinicContext,
        *,
        extensions: Sequence[Extension] | None = None,
        staff_process: bool = False,
    ) -> None:
        self.config = config
        self.context = context
        self.extensions = list(
            extensions if extensions is not None else load_extensions(config.extensions)
        )
        self._sockets = _Bound(
            _bind(config.host, config.kiosk_port), _bind(config.host, config.staff_port)
        )
        self.kiosk_port: int = self._sockets.kiosk.getsockname()[1]
        self.staff_port: int = self._sockets.staff.getsockname()[1]
        self._listeners: list[_Listener] = []
        self._supervisor: StaffSupervisor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.started = threading.Event()
        self.kiosk_app = create_kiosk_app(
            context,
            extra_routers=[e.kiosk_router for e in self.extensions if e.kiosk_router],
        )
        #: the dashboard's application, None when it runs in its own process
        self.staff_app: ASGIApp | None = None if staff_process else create_staff_app(context)

    @property
    def staff_pid(self) -> int | None:
        """The process id of the dashboard's process, when it runs in one of its own."""
        return self._supervisor.pid if self._supervisor is not None else None

    def _uvicorn_config(self, app: Any, *, mutual: bool) -> uvicorn.Config:
        return listener_config(self.config, app, mutual=mutual)

    async def serve(self) -> None:
        """Run until ``stop()``; cleans up everything it started."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.context.events.bind(loop)
        bridge: NoticeBridge | None = None
        if self.context.db.backend == "postgresql":
            # other instances may share the database: their notices come, ours go
            bridge = NoticeBridge(self.context.db, self.context.events)
            await loop.run_in_executor(None, bridge.start)
        kiosk = _Listener(self._uvicorn_config(self.kiosk_app, mutual=True))
        self._listeners = [kiosk]
        runs = [kiosk.serve(sockets=[self._sockets.kiosk])]
        if self.staff_app is not None:
            staff = _Listener(self._uvicorn_config(self.staff_app, mutual=False))
            self._listeners.append(staff)
            runs.append(staff.serve(sockets=[self._sockets.staff]))
        else:
            self._supervisor = StaffSupervisor(
                self.config, self._sockets.staff, self.context.events
            )
            self._supervisor.start()
        instance = InstanceRecord(self.context.db, self.kiosk_port, self.staff_port)
        await self.context.run(instance.register)
        tasks = [
            asyncio.create_task(self._refresh_crls(), name="crl-refresh"),
            asyncio.create_task(self._purge(), name="purge"),
            asyncio.create_task(self._write_receipt_files(), name="receipt-files"),
            asyncio.create_task(self._heartbeat(instance), name="instance-heartbeat"),
        ]
        watcher = asyncio.create_task(self._announce_started(), name="started")
        try:
            await asyncio.gather(*runs)
        finally:
            if self._supervisor is not None:
                await self._supervisor.stop()
            for task in (*tasks, watcher):
                task.cancel()
            await asyncio.gather(*tasks, watcher, return_exceptions=True)
            with contextlib.suppress(Exception):
                await loop.run_in_executor(None, instance.unregister)
            if bridge is not None:
                await loop.run_in_executor(None, bridge.stop)
            self.context.events.close()
            self._sockets.kiosk.close()
            self._sockets.staff.close()
            await loop.run_in_executor(None, _last_receipt_files, self.context)
            await loop.run_in_executor(None, self.context.close)

    async def _announce_started(self) -> None:
        supervisor = self._supervisor
        while not all(listener.started for listener in self._listeners) or (
            supervisor is not None and not supervisor.ready.is_set()
        ):
            await asyncio.sleep(0.02)
        log.info(
            "clinic server: kiosk API https://%s:%d (mutual TLS), dashboard https://%s:%d",
            self.config.host,
            self.kiosk_port,
            self.config.host,
            self.staff_port,
        )
        self.started.set()

    def stop(self) -> None:
        """Ask both listeners to finish (thread-safe)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._stop_now)

    def _stop_now(self) -> None:
        if self._supervisor is not None:
            self._supervisor.stopping()
        self.context.events.close()
        for listener in self._listeners:
            listener.should_exit = True

    async def _refresh_crls(self) -> None:
        trust = self.context.trust
        await keep_current(
            trust.refresh, trust.load_shared, self.context.run, self.config.crl_refresh_s
        )

    async def _write_receipt_files(self) -> None:
        await _receipt_files_loop(self.context)

    async def _heartbeat(self, instance: InstanceRecord) -> None:
        beats = 0
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            beats += 1
            try:
                await self.context.run(instance.heartbeat)
                if self.context.db.backend == "postgresql" and beats % 4 == 0:
                    # a decision an instance that stopped was making goes back to the queue
                    await self.context.run(
                        self.context.service.recover_interrupted, RECOVER_AFTER_S
                    )
            except Exception:
                log.warning("could not refresh this instance's row", exc_info=True)

    async def _purge(self) -> None:
        while True:
            await asyncio.sleep(PURGE_INTERVAL_S)
            try:
                await self.context.run(self.context.service.purge_challenges)
            except Exception:
                log.exception("purging old challenges failed")
            retention = self.context.extras.get("retention")
            if isinstance(retention, Retention):
                try:
                    await self.context.run(retention.purge)
                except Exception:
                    log.exception("the retention purge failed")


async def _receipt_files_loop(context: ClinicContext) -> None:
    """Write result files as checks complete, and retry those the folder refused."""
    receipts = context.extras.get("receipt_files")
    if not isinstance(receipts, ReceiptQueue) or not receipts.settings.enabled:
        return
    while True:
        try:
            await context.run(receipts.drain)
        except Exception:
            log.exception("writing result files failed")
        await asyncio.sleep(POLL_S)


def _last_receipt_files(context: ClinicContext) -> None:
    """On stop: write the result files still due, so a stop does not delay them."""
    receipts = context.extras.get("receipt_files")
    if isinstance(receipts, ReceiptQueue) and receipts.settings.enabled:
        try:
            receipts.drain()
        except Exception:
            log.exception("writing result files on stop failed")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (the clinic extra has it), else asyncio's own loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class ServerThread:
    """A ``ClinicServer`` on its own event loop in a background thread (tests, bench)."""

    def __init__(self, server: ClinicServer) -> None:
        self.server = server
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="clinic-server", daemon=True)

    def _run(self) -> None:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            try:
                runner.run(self.server.serve())
            except BaseException as exc:
                self.error = exc
                self.server.started.set()

    def start(self, timeout: float = 15.0) -> ServerThread:
        self._thread.start()
        if not self.server.started.wait(timeout):
            raise RuntimeError("the clinic server did not start")
        if self.error is not None:
            raise RuntimeError(f"the clinic server failed: {self.error!r}") from self.error
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self.server.stop()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError("the clinic server did not stop")

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
