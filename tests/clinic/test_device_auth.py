"""Only registered kiosks get in: mutual TLS, then a device signature on every request."""

from __future__ import annotations

import json
import ssl
import time

import httpx
import pytest

from clinic.pki import CertificateAuthority, cert_pem, key_pem, new_device_key, write_private
from contract.device_signing import DeviceIdentity
from kiosk.clinic_client import ClinicClient, make_http_client
from kiosk.errors import ServerRejected, ServerUnreachable
from tests.support.clinic import Kiosk, concrete


def tls_client(clinic, cert_path=None, key_path=None) -> httpx.Client:
    """HTTPS to the kiosk port with (or without) a TLS client certificate, no signature."""
    context = ssl.create_default_context(cafile=str(clinic.server_ca))
    if cert_path is not None:
        context.load_cert_chain(str(cert_path), str(key_path))
    return httpx.Client(base_url=clinic.kiosk_url, verify=context, timeout=10)


def route_table(app) -> list[tuple[str, str]]:
    """(method, path template) of every route the application routes to.

    FastAPI 0.16x keeps included routers as branches; older versions flatten them.
    """
    table = []
    for route in app.routes:
        if hasattr(route, "effective_route_contexts"):
            entries = [(c.path, c.original_route) for c in route.effective_route_contexts()]
        else:
            entries = [(route.path, route)]
        for path, original in entries:
            for method in sorted(getattr(original, "methods", None) or {"GET"}):
                if method != "HEAD":
                    table.append((method, path))
    return table


def test_a_kiosk_without_a_client_certificate_cannot_connect(clinic):
    with tls_client(clinic) as client, pytest.raises(httpx.TransportError):
        client.post("/api/v1/challenges", json={})


def test_a_client_certificate_from_another_ca_cannot_connect(clinic, tmp_path):
    foreign = CertificateAuthority.create("someone else's device CA")
    key = new_device_key()
    cert_path, key_path = tmp_path / "f.pem", tmp_path / "f.key.pem"
    cert_path.write_bytes(cert_pem(foreign.issue_device("kiosk-1", key)))
    write_private(key_path, key_pem(key))
    identity = DeviceIdentity.load(cert_path, key_path)
    http = make_http_client(
        clinic.kiosk_url,
        ca_file=clinic.server_ca,
        identity=identity,
        client_cert_file=cert_path,
        client_key_file=key_path,
    )
    with ClinicClient(http, retries=0) as client, pytest.raises(ServerUnreachable):
        client.challenge()


def test_the_kiosk_pins_the_clinic_server_ca(clinic, tmp_path):
    kiosk = clinic.kiosk()
    other_ca = CertificateAuthority.create("not the clinic")
    pinned = tmp_path / "other-ca.pem"
    pinned.write_bytes(cert_pem(other_ca.certificate))
    http = make_http_client(
        clinic.kiosk_url,
        ca_file=pinned,
        identity=kiosk.identity,
        client_cert_file=kiosk.cert_path,
        client_key_file=kiosk.key_path,
    )
    with ClinicClient(http, retries=0) as client, pytest.raises(ServerUnreachable):
        client.challenge()


def test_a_request_without_a_device_signature_is_refused(clinic):
    kiosk = clinic.kiosk()
    with tls_client(clinic, kiosk.cert_path, kiosk.key_path) as client:
        answer = client.post("/api/v1/challenges", json={})
    assert answer.status_code == 401
    assert "missing header" in answer.json()["detail"]


def test_a_request_signed_by_another_key_is_refused(clinic):
    kiosk = clinic.kiosk()
    forged = DeviceIdentity(kiosk.identity.certificate, new_device_key())
    body = b"{}"
    headers = forged.sign_request("POST", "/api/v1/challenges", body, now=time.time())
    with tls_client(clinic, kiosk.cert_path, kiosk.key_path) as client:
        answer = client.post(
            "/api/v1/challenges",
            content=body,
            headers={**headers, "content-type": "application/json"},
        )
    assert answer.status_code == 401


def test_a_body_changed_after_signing_is_refused(clinic):
    kiosk = clinic.kiosk()
    headers = kiosk.identity.sign_request(
        "POST", "/api/v1/heartbeat", b'{"status":"ok"}', now=time.time()
    )
    with tls_client(clinic, kiosk.cert_path, kiosk.key_path) as client:
        answer = client.post(
            "/api/v1/heartbeat",
            content=b'{"status":"error"}',
            headers={**headers, "content-type": "application/json"},
        )
    assert answer.status_code == 401


def test_a_stale_signature_is_refused(clinic):
    kiosk = clinic.kiosk()
    late = clinic.connect(kiosk.cert_path, kiosk.key_path, clock=lambda: time.time() - 600)
    with pytest.raises(ServerRejected) as refused:
        late.client.challenge()
    late.close()
    assert refused.value.status == 401


def test_a_certificate_of_the_device_ca_that_was_never_registered_is_refused(clinic, tmp_path):
    key = new_device_key()
    rogue = clinic.device_ca().issue_device("kiosk-rogue", key)
    cert_path, key_path = tmp_path / "rogue.pem", tmp_path / "rogue.key.pem"
    cert_path.write_bytes(cert_pem(rogue))
    write_private(key_path, key_pem(key))
    kiosk = clinic.connect(cert_path, key_path)
    with pytest.raises(ServerRejected) as refused:
        kiosk.client.challenge()
    kiosk.close()
    assert refused.value.status == 403


def test_a_signature_with_a_foreign_certificate_is_refused_behind_valid_tls(clinic, tmp_path):
    kiosk = clinic.kiosk()
    foreign_ca = CertificateAuthority.create("foreign")
    key = new_device_key()
    foreign = DeviceIdentity(foreign_ca.issue_device("kiosk-1", key), key)
    body = b"{}"
    headers = foreign.sign_request("POST", "/api/v1/challenges", body, now=time.time())
    with tls_client(clinic, kiosk.cert_path, kiosk.key_path) as client:
        answer = client.post(
            "/api/v1/challenges",
            content=body,
            headers={**headers, "content-type": "application/json"},
        )
    assert answer.status_code == 403


def test_a_revoked_kiosk_is_refused(clinic):
    from clinic.cli import main

    kiosk: Kiosk = clinic.kiosk("kiosk-to-revoke")
    assert kiosk.client.challenge().nonce
    database = ["--database", clinic.config.database] if clinic.config.database else []
    assert (
        main(
            [
                "--data-dir",
                str(clinic.config.data_dir),
                *database,
                "device",
                "revoke",
                "kiosk-to-revoke",
            ]
        )
        == 0
    )
    # the server re-reads a device certificate's state at least every few seconds
    deadline = time.monotonic() + 10
    status = None
    while time.monotonic() < deadline:
        try:
            kiosk.client.challenge()
        except ServerRejected as refused:
            status = refused.status
            break
        time.sleep(0.2)
    assert status == 403
    assert clinic.kiosk().client.challenge().nonce, "other kiosks carry on"


def test_every_kiosk_api_route_refuses_an_unsigned_request(clinic):
    app = clinic.server.kiosk_app.app  # the FastAPI app behind the device gate
    kiosk = clinic.kiosk()
    checked = []
    with tls_client(clinic, kiosk.cert_path, kiosk.key_path) as client:
        for method, template in route_table(app):
            path = concrete(template)
            answer = client.request(
                method, path, content=b"{}", headers={"content-type": "application/json"}
            )
            assert answer.status_code == 401, (method, path, answer.status_code)
            checked.append((method, template))
        assert client.get("/no/such/route").status_code == 401
    paths = {p for _, p in checked}
    assert {
        "/api/v1/challenges",
        "/api/v1/verifications",
        "/api/v1/openapi.json",
        "/api/v1/verifications/{verification_id}",
        "/api/v1/verifications/{verification_id}/confirm",
        "/api/v1/heartbeat",
    } <= paths


def test_the_openapi_schema_is_served_to_kiosks(clinic):
    schema = clinic.kiosk().http.get("/api/v1/openapi.json").json()
    assert set(schema["paths"]) >= {"/api/v1/challenges", "/api/v1/verifications"}
    assert json.dumps(schema)  # plain JSON
