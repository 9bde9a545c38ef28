"""A real clinic server on 127.0.0.1, with kiosks issued: what the demo, the benchmarks
and the end-to-end tests talk to.

``prepare_clinic`` makes a clinic data directory the way a clinic does (``clinic-server
init``, its outbox key, device identities issued, the simulated national system loaded with
a population's insured people); ``LocalClinic`` runs ``clinic-server``'s own server in a
subprocess (TLS, mutual TLS, device-signed requests) and stops it again.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PASSWORD = "local-bench-password"  # noqa: S105 - a throwaway server on loopback
#: the demo clinic's 医療機関コード (Tokyo, 医科), written into its result files
DEMO_INSTITUTION_CODE = "1310000001"


@dataclass(frozen=True)
class KioskFiles:
    """What a provisioned kiosk holds for talking to the local clinic server."""

    device_id: str
    certificate: Path
    key: Path
    server_ca: Path
    outbox_public_key: Path


def prepare_clinic(
    root: Path,
    devices: Sequence[str],
    kem: str,
    *,
    population: Any = None,
    receipt_folder: Path | None = None,
    hostnames: Sequence[str] = (),
) -> dict[str, KioskFiles]:
    """A clinic data directory with its outbox key and the devices issued (no server yet).

    With a ``population`` (:class:`kiosk.sim.population.Population`) the server trusts its
    JPKI CA and CRL and the simulated national system holds its insured people. With a
    ``receipt_folder`` the server writes a result file there for each completed check.
    ``hostnames`` are more names or addresses for the server certificate (a kiosk in a virtual
    machine reaches the server at an address of its own network).
    """
    from cryptography import x509

    from clinic.cli import initialise
    from clinic.config import config_from
    from clinic.devices import DeviceRegistry
    from clinic.national.simulated import load_insured, read_insured_jsonl
    from clinic.outbox_key import create_outbox_key, outbox_key_paths
    from clinic.pki import CertificateAuthority, cert_pem, write_private
    from clinic.server import open_database

    data = root / "clinic"
    trust: dict[str, Any] = {}
    if population is not None:
        trust = {
            "jpki_ca": [str(population.ca_directory / "jpki-ca.pem")],
            "jpki_crl": [str(population.crl_path)],
        }
    initialise(data, admin="admin", password=PASSWORD, hostnames=list(hostnames), **trust)
    if receipt_folder is not None:
        receipt_folder.mkdir(parents=True, exist_ok=True)
        settings = data / "clinic.toml"
        settings.write_text(
            f'medical_institution_code = "{DEMO_INSTITUTION_CODE}"\n'
            + settings.read_text(encoding="utf-8")
            + f"\n[receipt_files]\nfolder = {json.dumps(str(receipt_folder.resolve()))}\n",
            encoding="utf-8",
        )
    private, public = outbox_key_paths(data)
    private.unlink()
    create_outbox_key(data, kem)
    config = config_from(data, {})
    db = open_database(config)
    files: dict[str, KioskFiles] = {}
    try:
        if population is not None:
            load_insured(db, read_insured_jsonl(population.insured_path), now=time.time())
        ca_cert = x509.load_pem_x509_certificate(config.paths.device_ca.read_bytes())
        registry = DeviceRegistry(db, ca_cert, clock=time.time)
        ca = CertificateAuthority.load(config.paths.device_ca, config.paths.device_ca_key)
        for name in devices:
            issued = registry.issue(ca, name)
            cert, key = root / f"{name}.pem", root / f"{name}.key.pem"
            write_private(key, issued.key_pem)
            cert.write_bytes(cert_pem(issued.certificate))
            files[name] = KioskFiles(name, cert, key, config.paths.server_ca, public)
    finally:
        db.close()
    return files


def serve(data_dir: Path, kiosk_port: int = 0, staff_port: int = 0) -> None:
    """Run the clinic server on 127.0.0.1 (free ports unless given); print the kiosk port;
    until SIGTERM. The JPKI trust is the data directory's (none unless it names a CA)."""
    import asyncio
    import logging
    from dataclasses import replace

    from clinic.config import config_from
    from clinic.jpki import JpkiTrust
    from clinic.server import ClinicServer, build_context, new_event_loop

    logging.basicConfig(level=logging.WARNING)
    config = replace(
        config_from(data_dir, {}),
        kiosk_port=kiosk_port,
        staff_port=staff_port,
        log_level="warning",
    )
    context = build_context(config, trust=None if config.jpki_ca_files else JpkiTrust([]))
    server = ClinicServer(config, context)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, server.stop)
        task = asyncio.create_task(server.serve())
        while not server.started.is_set() and not task.done():
            await asyncio.sleep(0.02)
        print(f"port {server.kiosk_port} {server.staff_port}", flush=True)
        await task

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main())


class LocalClinic:
    """A real clinic server (TLS, mTLS, ingest) in a subprocess on 127.0.0.1."""

    def __init__(
        self,
        root: Path,
        devices: Sequence[str],
        *,
        kem: str = "mlkem768-x25519",
        population: Any = None,
        receipt_folder: Path | None = None,
    ):
        self.root = root
        self.kiosks = prepare_clinic(
            root, devices, kem, population=population, receipt_folder=receipt_folder
        )
        self.data_dir = root / "clinic"
        self.port = 0
        self.staff_port = 0
        self._process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def staff_url(self) -> str:
        return f"https://127.0.0.1:{self.staff_port}"

    def start(self, timeout_s: float = 30.0) -> LocalClinic:
        """Start the server; after a :meth:`stop` it comes back on the same ports."""
        ports = [str(self.port), str(self.staff_port)] if self.port else []
        self._process = subprocess.Popen(
            [sys.executable, "-m", "testbed.local_clinic", "serve", str(self.data_dir), *ports],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self._process.stdout is not None
        line = ""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self._process.stdout.readline()
            if line.startswith("port ") or not line:
                break
        if not line.startswith("port "):
            self.stop()
            raise RuntimeError("the local clinic server did not start")
        self.port, self.staff_port = (int(p) for p in line.split()[1:3])
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> LocalClinic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def http_client(self, device_id: str, **kwargs: Any) -> Any:
        from contract.device_signing import DeviceIdentity
        from kiosk.clinic_client import make_http_client

        files = self.kiosks[device_id]
        return make_http_client(
            self.url,
            ca_file=files.server_ca,
            identity=DeviceIdentity.load(files.certificate, files.key),
            client_cert_file=files.certificate,
            client_key_file=files.key,
            **kwargs,
        )

    @contextlib.contextmanager
    def ingest(self) -> Iterator[Any]:
        """The server's ingest store, opened on its database (the server may run)."""
        from clinic.at_rest import RecordCipher
        from clinic.config import config_from
        from clinic.ingest import Ingest
        from clinic.storage import Database

        cipher = RecordCipher.load(config_from(self.data_dir, {}).record_key_path)
        db = Database.open(str(self.data_dir / "clinic.db"), pool_size=1)
        try:
            yield Ingest(db, None, clock=time.time, cipher=cipher)
        finally:
            db.close()


if __name__ == "__main__":
    if len(sys.argv) in (3, 5) and sys.argv[1] == "serve":
        serve(Path(sys.argv[2]), *(int(port) for port in sys.argv[3:5]))
    else:
        print(
            "usage: python -m testbed.local_clinic serve DATA_DIR [KIOSK_PORT STAFF_PORT]",
            file=sys.stderr,
        )
        sys.exit(2)
