"""A device request counts once, and only over the connection of the kiosk that signed it.

Finding: a request captured from kiosk 1 was accepted again within its 300 s window, over
kiosk 2's connection too, and over a revoked kiosk's connection. Now every signed request
carries a request id the server remembers (in the database, so every server instance sharing
it refuses the copy), and the certificate a request is signed for must be the TLS client
certificate of the connection it arrives on.
"""

from __future__ import annotations

import json
import ssl
import time
from pathlib import Path

import httpx
import pytest

from clinic.server import ClinicServer, ServerThread, build_context
from tests.support.clinic import Clinic, Kiosk

HEARTBEAT = "/api/v1/heartbeat"
BODY = json.dumps({"status": "ok", "detail": {}}).encode()


def over_tls(url: str, server_ca: Path, cert: Path, key: Path) -> httpx.Client:
    """A mutual-TLS connection with this certificate; requests carry only given headers."""
    context = ssl.create_default_context(cafile=str(server_ca))
    context.load_cert_chain(str(cert), str(key))
    return httpx.Client(base_url=url, verify=context, timeout=10)


def connection_of(clinic: Clinic, kiosk: Kiosk) -> httpx.Client:
    return over_tls(clinic.kiosk_url, clinic.server_ca, kiosk.cert_path, kiosk.key_path)


def signed_heartbeat(kiosk: Kiosk) -> dict[str, str]:
    """The headers kiosk's own client would send with this heartbeat (a captured copy)."""
    headers = kiosk.identity.sign_request("POST", HEARTBEAT, BODY, now=time.time())
    return {**headers, "content-type": "application/json"}


def send(client: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    return client.post(HEARTBEAT, content=BODY, headers=headers)


def test_a_fresh_request_passes_and_its_copy_is_refused(clinic: Clinic) -> None:
    kiosk = clinic.kiosk("kiosk-replayed")
    captured = signed_heartbeat(kiosk)
    with connection_of(clinic, kiosk) as connection:
        assert send(connection, captured).status_code == 204
        again = send(connection, captured)
    assert again.status_code == 401, again.text
    with connection_of(clinic, kiosk) as another_connection:
        assert send(another_connection, captured).status_code == 401
    kiosk.client.heartbeat("ok")  # the kiosk's own next requests carry on


def test_a_request_of_kiosk_1_over_kiosk_2s_connection_is_refused(clinic: Clinic) -> None:
    kiosk_1, kiosk_2 = clinic.kiosk("kiosk-one"), clinic.kiosk("kiosk-two")
    captured = signed_heartbeat(kiosk_1)
    with connection_of(clinic, kiosk_2) as connection:
        answer = send(connection, captured)
    assert answer.status_code in (401, 403), answer.text
    # refusing it did not use the request up: kiosk 1 itself still gets it through once
    with connection_of(clinic, kiosk_1) as connection:
        assert send(connection, captured).status_code == 204


def test_a_revoked_kiosks_connection_carrying_another_kiosks_signature_is_refused(
    clinic: Clinic,
) -> None:
    kiosk_1 = clinic.kiosk("kiosk-honest")
    revoked = clinic.kiosk("kiosk-stolen")
    assert clinic.context.devices.revoke("kiosk-stolen") == 1
    with connection_of(clinic, revoked) as connection:
        answer = send(connection, signed_heartbeat(kiosk_1))
    assert answer.status_code in (401, 403), answer.text


def test_a_request_counts_once_across_server_instances_sharing_the_database(
    clinic: Clinic,
) -> None:
    """A second server on the same data directory and database refuses what the first took."""
    kiosk = clinic.kiosk("kiosk-two-servers")
    second = ClinicServer(clinic.config, build_context(clinic.config, clock=clinic.clock))
    with ServerThread(second):
        captured = signed_heartbeat(kiosk)
        with connection_of(clinic, kiosk) as first_connection:
            assert send(first_connection, captured).status_code == 204
        with over_tls(
            f"https://127.0.0.1:{second.kiosk_port}",
            clinic.server_ca,
            kiosk.cert_path,
            kiosk.key_path,
        ) as second_connection:
            assert send(second_connection, captured).status_code == 401
            fresh = send(second_connection, signed_heartbeat(kiosk))
    assert fresh.status_code == 204, fresh.text


def test_a_request_without_a_request_id_is_refused(clinic: Clinic) -> None:
    kiosk = clinic.kiosk("kiosk-no-id")
    headers = {k: v for k, v in signed_heartbeat(kiosk).items() if k.lower() != "onshi-request-id"}
    with connection_of(clinic, kiosk) as connection:
        answer = send(connection, headers)
    assert answer.status_code == 401


@pytest.mark.parametrize("request_id", ["", "0" * 31, "G" * 32, "0" * 33])
def test_a_malformed_request_id_is_refused(clinic: Clinic, request_id: str) -> None:
    kiosk = clinic.kiosk("kiosk-bad-id")
    headers = {**signed_heartbeat(kiosk), "Onshi-Request-Id": request_id}
    with connection_of(clinic, kiosk) as connection:
        answer = send(connection, headers)
    assert answer.status_code == 401


def test_request_ids_are_forgotten_once_their_signature_is_too_old_anyway(
    clinic: Clinic,
) -> None:
    clinic.kiosk("kiosk-purged").client.heartbeat("ok")
    registry = clinic.context.devices
    db = clinic.context.db
    with db.transaction() as tx:
        before = tx.one("SELECT COUNT(*) AS n FROM device_requests")
    assert before is not None
    assert before["n"] > 0
    clinic.clock.offset = 3600.0
    try:
        registry.remember_request("kiosk-any", "f" * 32, clinic.clock() + 301)
    finally:
        clinic.clock.offset = 0.0
    with db.transaction() as tx:
        after = tx.one("SELECT COUNT(*) AS n FROM device_requests")
    assert after is not None
    assert after["n"] == 1
