"""``kiosk.clinic_client``: failures translated at the boundary, only safe calls retried."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from kiosk.clinic_client import ClinicClient
from kiosk.errors import ServerRejected, ServerUnreachable

VERIFICATION = {
    "verification_id": "0123456789abcdef0123456789abcdef",
    "state": "done",
    "reason_code": "eligible",
    "validity_code": 1,
    "patient_message": "eligible",
    "staff_reason": "有効な資格を確認しました。",
    "staff_reason_en": "Eligibility confirmed.",
    "temporary": False,
    "record": {"InsuredPartialContributionRatio": "030"},
    "created_at": "2026-11-24T09:00:00+09:00",
}
CHALLENGE = {
    "nonce": base64.b64encode(b"n" * 32).decode(),
    "expires_at": "2026-11-24T09:01:00+09:00",
}


def client_for(*answers, calls=None):
    """A client whose server answers with ``answers`` in turn (a status, a body or an error)."""
    queue = list(answers)
    seen = calls if calls is not None else []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        if isinstance(body, (dict, list)):
            return httpx.Response(status, json=body)
        return httpx.Response(status, content=body)

    http = httpx.Client(transport=httpx.MockTransport(handler), base_url="https://clinic.test")
    return ClinicClient(http, retries=2, sleep=lambda _: None), seen


def test_a_challenge_is_retried_after_a_temporary_refusal():
    client, calls = client_for((503, {"detail": "busy"}), (201, CHALLENGE))
    challenge = client.challenge()
    assert challenge.nonce == b"n" * 32
    assert len(calls) == 2


def test_a_verification_is_never_retried():
    client, calls = client_for((503, {"detail": "busy"}), (201, VERIFICATION))
    with pytest.raises(ServerRejected) as refused:
        client.verify(b"n" * 32, "pin", b"cert", b"sig")
    assert refused.value.temporary
    assert refused.value.status == 503
    assert len(calls) == 1


def test_a_connection_that_never_completes_is_unreachable():
    failure = httpx.ConnectError("refused")
    client, calls = client_for(failure, failure, failure)
    with pytest.raises(ServerUnreachable) as unreachable:
        client.challenge()
    assert unreachable.value.temporary
    assert len(calls) == 3


def test_a_timeout_during_a_verification_is_unreachable_not_retried():
    client, calls = client_for(httpx.ReadTimeout("slow"), (201, VERIFICATION))
    with pytest.raises(ServerUnreachable):
        client.verify(b"n" * 32, "pin", b"cert", b"sig")
    assert len(calls) == 1


@pytest.mark.parametrize(
    "answer",
    [
        (201, b"<html>not json</html>"),
        (201, [1, 2]),
        (201, {**VERIFICATION, "state": "maybe"}),
        (201, {**VERIFICATION, "validity_code": 9}),
        (201, {**VERIFICATION, "validity_code": True}),
        (201, {key: v for key, v in VERIFICATION.items() if key != "reason_code"}),
        (201, {**VERIFICATION, "record": "030"}),
    ],
    ids=[
        "not-json",
        "not-an-object",
        "unknown-state",
        "validity-9",
        "validity-bool",
        "missing-field",
        "record-not-object",
    ],
)
def test_a_malformed_answer_is_rejected(answer):
    client, _ = client_for(answer)
    with pytest.raises(ServerRejected) as rejected:
        client.verify(b"n" * 32, "pin", b"cert", b"sig")
    assert not rejected.value.temporary


def test_an_error_status_is_rejected_permanently_with_its_detail():
    client, _ = client_for((404, {"detail": "no such verification"}))
    with pytest.raises(ServerRejected, match="no such verification") as rejected:
        client.wait_for_result(VERIFICATION["verification_id"], 0)
    assert rejected.value.status == 404
    assert not rejected.value.temporary


def test_a_malformed_challenge_is_rejected():
    client, _ = client_for((201, {"nonce": "***", "expires_at": "soon"}))
    with pytest.raises(ServerRejected):
        client.challenge()


def test_the_verification_request_has_the_documented_shape():
    client, calls = client_for((201, VERIFICATION))
    result = client.verify(b"\x01" * 32, "visual", b"\x30\x82", None)
    sent = json.loads(calls[0].content)
    assert calls[0].url.path == "/api/v1/verifications"
    assert sent == {
        "nonce": base64.b64encode(b"\x01" * 32).decode(),
        "mode": "visual",
        "certificate": base64.b64encode(b"\x30\x82").decode(),
        "signature": None,
    }
    assert result.eligible
    assert result.copay_percent == 30


def test_waiting_for_staff_extends_the_read_timeout_by_the_wait():
    client, calls = client_for((200, VERIFICATION))
    client.wait_for_result(VERIFICATION["verification_id"], 20)
    request = calls[0]
    assert request.url.params["wait"] == "20"
    assert request.extensions["timeout"]["read"] >= 20


def test_confirm_is_retried_since_the_server_treats_a_repeat_as_one():
    client, calls = client_for((503, b""), (200, VERIFICATION))
    assert client.confirm(VERIFICATION["verification_id"], "confirmed").state == "done"
    assert len(calls) == 2
    assert json.loads(calls[1].content) == {"decision": "confirmed"}


def test_a_verification_id_cannot_steer_the_request_path():
    client, calls = client_for((200, VERIFICATION))
    with pytest.raises(ValueError, match="not a verification id"):
        client.wait_for_result("../../admin", 0)
    assert calls == []


def test_a_heartbeat_accepts_no_content():
    client, calls = client_for((204, b""))
    client.heartbeat("ok", {"reader": "present"})
    assert json.loads(calls[0].content) == {"status": "ok", "detail": {"reader": "present"}}


def test_a_heartbeat_is_not_retried_the_next_one_replaces_it():
    client, calls = client_for(httpx.ConnectError("connection refused"), (204, b""), (204, b""))
    with pytest.raises(ServerUnreachable):
        client.heartbeat("ok", {"reader": "present"})
    assert len(calls) == 1
