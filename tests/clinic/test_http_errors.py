"""One mapping from the exception tree to HTTP answers: the table, then the kiosk API live.

The dashboard's error page, from the same mapping, is tested in ``dashboard/test_app.py``.
"""

from __future__ import annotations

import time

import httpx
import pytest

from clinic.devices import DeviceRefused
from clinic.errors import (
    Conflict,
    ConflictError,
    NationalUnavailable,
    NotFound,
    PasswordPolicyError,
    StorageError,
)
from clinic.http_errors import answer_for
from contract import api
from contract.errors import ConfigError, DeviceAuthError
from contract.outbox_record import Backlog, Batch
from contract.sealing import OutboxPublicKey
from kiosk.clinic_client import ClinicClient, make_http_client
from kiosk.errors import ServerRejected
from kiosk.outbox.queue import Outbox
from tests.support.clinic import database_unavailable

#: Longer than the server's SQLite busy timeout (10 s), so the client sees the server's answer.
PATIENT = httpx.Timeout(30.0)


@pytest.mark.parametrize(
    ("error", "status", "headers"),
    [
        (DeviceRefused("revoked"), 403, {}),
        (DeviceAuthError("stale"), 401, {"WWW-Authenticate": "Onshi-Device"}),
        (NotFound("0" * 32), 404, {}),
        (Conflict("verification is done, not awaiting staff", None), 409, {}),
        (ConflictError("UNIQUE constraint failed"), 409, {}),
        (PasswordPolicyError("too short"), 422, {}),
        (StorageError("database is locked", temporary=True), 503, {"Retry-After": "5"}),
        (NationalUnavailable("down"), 503, {"Retry-After": "30"}),
        (StorageError("disk I/O error"), 500, {}),
        (ConfigError("broken"), 500, {}),
    ],
)
def test_each_error_of_the_tree_has_its_status(error, status, headers):
    answer = answer_for(error)
    assert (answer.status, answer.headers) == (status, headers)
    if error.temporary:
        assert api.is_temporary(answer.status)


def test_database_messages_stay_out_of_answers():
    assert "UNIQUE" not in answer_for(ConflictError("UNIQUE constraint failed: x.y")).detail
    assert "/var/lib" not in answer_for(StorageError("unable to open /var/lib/x.db")).detail


def test_an_unknown_verification_is_a_404_with_the_json_error_body(clinic):
    answer = clinic.kiosk().http.get("/api/v1/verifications/" + "0" * 32)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"detail": "no such verification"}


def test_a_decided_check_is_a_409_with_the_json_error_body(clinic):
    kiosk = clinic.kiosk()
    pending = kiosk.check(clinic.card("face-auth"), "visual")
    kiosk.client.confirm(pending.verification_id, "rejected")
    answer = kiosk.http.post(
        f"/api/v1/verifications/{pending.verification_id}/confirm",
        json={"decision": "confirmed"},
    )
    assert answer.status_code == 409
    assert answer.json() == {"detail": "verification is done, not awaiting staff"}


def test_a_busy_database_answers_503_with_retry_after_and_the_json_error_body(clinic):
    kiosk = clinic.kiosk("kiosk-busy-db")
    http = make_http_client(
        clinic.kiosk_url,
        ca_file=clinic.server_ca,
        identity=kiosk.identity,
        client_cert_file=kiosk.cert_path,
        client_key_file=kiosk.key_path,
        timeout=PATIENT,
    )
    with http:
        assert http.post("/api/v1/challenges").status_code == 201  # the gate knows the kiosk
        with database_unavailable(clinic):
            answer = http.post("/api/v1/challenges")
        assert answer.status_code == 503
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == {"detail": "the database is busy or unavailable; try again later"}
        assert api.is_temporary(answer.status_code)
        assert api.parse_retry_after(answer.headers["retry-after"], now=time.time()) == 5
        assert http.post("/api/v1/challenges").status_code == 201, "it recovers"


def test_an_outbox_batch_during_a_database_outage_is_refused_for_later(clinic, tmp_path):
    kiosk = clinic.kiosk("kiosk-outbox-busy-db")
    public = OutboxPublicKey.load(clinic.config.data_dir / "outbox.pub.json")
    with Outbox(tmp_path / "outbox.db", device_id=kiosk.device_id, public_key=public) as outbox:
        outbox.append("staff.action", {"action": "visual_ok"})
        records = outbox.pending(max_records=10, max_bytes=1 << 20)
    batch = Batch(kiosk.device_id, tuple(records), Backlog(1, 1000))
    http = make_http_client(
        clinic.kiosk_url,
        ca_file=clinic.server_ca,
        identity=kiosk.identity,
        client_cert_file=kiosk.cert_path,
        client_key_file=kiosk.key_path,
        timeout=PATIENT,
    )
    with http:
        sender = ClinicClient(http)
        kiosk.client.challenge()  # the gate knows the kiosk
        with database_unavailable(clinic), pytest.raises(ServerRejected) as refused:
            sender.send_batch(batch)
        assert refused.value.status == 503
        assert refused.value.temporary
        assert refused.value.retry_after_s == 5
        assert list(sender.send_batch(batch).acked) == [r.header.seq for r in records]
