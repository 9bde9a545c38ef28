"""Two instances of ``clinic-server serve`` on one PostgreSQL database (loopback, TLS): instance
A is killed (SIGKILL) in the middle of a burst of verifications and outbox uploads; the kiosks,
configured with both URLs, carry on through B, and nothing acknowledged is lost or duplicated.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from clinic.config import config_from
from clinic.storage import Database
from contract.challenge import signed_message
from contract.device_signing import DeviceIdentity
from contract.sealing import OutboxPublicKey
from kiosk.clinic_client import ClinicClient, make_http_client
from kiosk.outbox.queue import Outbox
from kiosk.outbox.uploader import Uploader, UploadPolicy
from testbed.bench.clinic import _prepare, _ServerProcess
from tests.support.clinic import fresh_database

KIOSKS = 3
BEFORE_KILL_S = 1.5
AFTER_KILL_S = 2.0


@dataclass
class KioskLog:
    """What one kiosk was told."""

    acknowledged: list[str] = field(default_factory=list)  # verification ids, eligible
    acknowledged_after_kill: int = 0
    replayed_nonce: int = 0  # a verify resent to B whose nonce A had used
    signatures: int = 0
    errors: list[str] = field(default_factory=list)


def _client(setup, device: str, urls: list[str]) -> ClinicClient:
    cert = setup.root / "devices" / f"{device}.pem"
    key = setup.root / "devices" / f"{device}.key.pem"
    identity = DeviceIdentity.load(cert, key)
    clients = [
        make_http_client(
            url,
            ca_file=setup.data_dir / "server-ca.pem",
            identity=identity,
            client_cert_file=cert,
            client_key_file=key,
        )
        for url in urls
    ]
    return ClinicClient(clients[0], retries=0, others=clients[1:])


def test_killing_one_instance_mid_burst_loses_and_repeats_nothing(tmp_path: Path) -> None:
    with fresh_database("postgresql") as database:
        assert database is not None
        setup = _prepare(tmp_path, KIOSKS, database)
        a = _ServerProcess(setup.data_dir, database)
        b = _ServerProcess(setup.data_dir, database)
        urls = [f"https://127.0.0.1:{a.kiosk_port}", f"https://127.0.0.1:{b.kiosk_port}"]
        card_key = serialization.load_pem_private_key(setup.card_key_pem, None)
        assert isinstance(card_key, rsa.RSAPrivateKey)
        killed = threading.Event()
        stop = threading.Event()
        logs = {f"bench-{i:03d}": KioskLog() for i in range(KIOSKS)}
        uploaded: dict[str, list[int]] = {}

        def kiosk(device: str) -> None:
            log = logs[device]
            with _client(setup, device, urls) as client:
                while not stop.is_set():
                    try:
                        challenge = client.challenge()
                        signature = card_key.sign(
                            signed_message(challenge.nonce, device, "pin"),
                            padding.PKCS1v15(),
                            hashes.SHA256(),
                        )
                        log.signatures += 1
                        result = client.verify(
                            challenge.nonce, "pin", setup.card_cert_der, signature
                        )
                    except Exception as exc:
                        log.errors.append(f"{type(exc).__name__}: {exc}")
                        continue
                    if result.eligible:
                        log.acknowledged.append(result.verification_id)
                        log.acknowledged_after_kill += killed.is_set()
                    elif result.reason_code == "nonce.used":
                        log.replayed_nonce += 1
                    else:
                        log.errors.append(result.reason_code)

        public = OutboxPublicKey.load(setup.data_dir / "outbox.pub.json")
        device = "bench-000"

        def uploader() -> None:
            policy = UploadPolicy(batch_max_records=20, batch_max_age_s=0.0, idle_poll_s=0.05)
            with (
                Outbox(tmp_path / "outbox.db", device_id=device, public_key=public) as outbox,
                _client(setup, device, urls) as client,
            ):
                up = Uploader(outbox, client, policy)
                seqs: list[int] = []
                while not stop.is_set():
                    seqs.extend(
                        outbox.append_many([("card.event", {"n": len(seqs) + i}) for i in range(5)])
                    )
                    up.step()
                    time.sleep(0.01)
                deadline = time.monotonic() + 15
                while outbox.pending(max_records=1, max_bytes=1 << 30) and (
                    time.monotonic() < deadline
                ):
                    time.sleep(min(up.step(), 0.1))
                uploaded["appended"] = seqs
                uploaded["left"] = [
                    r.seq for r in outbox.pending(max_records=100_000, max_bytes=1 << 40)
                ]
                uploaded["server"] = [up.state.extra.get("server", "")]  # type: ignore[list-item]

        threads = [threading.Thread(target=kiosk, args=(d,)) for d in logs]
        threads.append(threading.Thread(target=uploader))
        try:
            for thread in threads:
                thread.start()
            time.sleep(BEFORE_KILL_S)
            killed.set()
            a.process.kill()  # SIGKILL: no goodbye, connections cut mid-request
            time.sleep(AFTER_KILL_S)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
            a.stop()
            b.stop()

        # the kiosks carried on through B, without an error
        for name, log in logs.items():
            assert log.errors == [], name
            assert log.acknowledged_after_kill > 0, f"{name} went on after the kill"
            assert len(log.acknowledged) > log.acknowledged_after_kill, f"{name} began on A"
            assert log.replayed_nonce <= 1, "at most the verification in flight at the kill"
            # one card signature per verification: nothing was signed twice
            assert log.signatures == len(log.acknowledged) + log.replayed_nonce

        config = config_from(setup.data_dir, {"database": database})
        db = Database.open(config.database_url, pool_size=1)
        try:
            with db.transaction() as tx:
                stored = tx.all("SELECT id, device_id, reason_code FROM verifications")
                records = tx.all(
                    "SELECT seq FROM outbox_records WHERE device_id = ? ORDER BY seq", (device,)
                )
        finally:
            db.close()
        by_device: dict[str, list[str]] = {}
        refused: dict[str, int] = {}  # B's record of each resent verify whose nonce A had used
        for row in stored:
            if row["reason_code"] == "nonce.used":
                refused[row["device_id"]] = refused.get(row["device_id"], 0) + 1
            else:
                by_device.setdefault(row["device_id"], []).append(row["id"])
        for name, log in logs.items():
            # every acknowledged check is stored, once; the only others are those A stored
            # but could not answer (the kiosk saw their nonce used when it asked B). A killed
            # between using the nonce and storing the check stored nothing for it.
            assert set(log.acknowledged) <= set(by_device[name])
            extra = len(by_device[name]) - len(log.acknowledged)
            assert 0 <= extra <= log.replayed_nonce
            assert refused.get(name, 0) == log.replayed_nonce
        # every log record the kiosk appended reached the server exactly once
        assert uploaded["left"] == []
        seqs = [r["seq"] for r in records]
        assert seqs == sorted(set(seqs))
        assert seqs == uploaded["appended"]
        assert uploaded["server"] == [urls[1]], "the uploader ended on B"
