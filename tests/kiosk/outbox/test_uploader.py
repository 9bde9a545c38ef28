"""The uploader's decisions, against a scripted server: batches, backoff, Retry-After, parking;
and its sending, through the kiosk's one clinic client over a mock transport."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from contract.api import parse_retry_after
from contract.outbox_record import Backlog, Batch, BatchAck, SealedRecord
from kiosk.clinic_client import ClinicClient
from kiosk.errors import ServerRejected, ServerUnreachable
from kiosk.outbox.queue import Outbox
from kiosk.outbox.uploader import Backoff, Uploader, UploadPolicy

MakeOutbox = Callable[..., Outbox]


class ScriptedServer:
    """Answers each batch with the next scripted outcome (an exception, or 'ack')."""

    def __init__(self, *script: object, ack_only: int | None = None) -> None:
        self.script = list(script)
        self.batches: list[Batch] = []
        self.ack_only = ack_only

    def send_batch(self, batch: Batch) -> BatchAck:
        self.batches.append(batch)
        outcome = self.script.pop(0) if self.script else "ack"
        if isinstance(outcome, Exception):
            raise outcome
        seqs = [r.seq for r in batch.records][: self.ack_only]
        return BatchAck(tuple(seqs), max(seqs))


def policy(**changes: float) -> UploadPolicy:
    base: dict = {"batch_max_records": 10, "batch_max_age_s": 0.0, "backoff_base_s": 1.0}
    base.update(changes)
    return UploadPolicy(**base)


def test_a_record_leaves_only_when_the_server_acknowledged_it(make_outbox: MakeOutbox) -> None:
    outbox = make_outbox()
    seqs = outbox.append_many([("card.event", {"n": i}) for i in range(6)])
    server = ScriptedServer(ack_only=4)
    uploader = Uploader(outbox, server, policy())
    assert uploader.step() == 0.0
    left = [r.seq for r in outbox.pending(max_records=10, max_bytes=1 << 20)]
    assert left == seqs[4:]
    assert outbox.status().server_high_water == seqs[3]


def test_temporary_failures_back_off_with_full_jitter_below_the_bound(
    make_outbox: MakeOutbox,
) -> None:
    outbox = make_outbox()
    outbox.append("card.event", {})
    failures = [ServerUnreachable("down")] * 12
    server = ScriptedServer(*failures)
    uploader = Uploader(
        outbox, server, policy(backoff_base_s=0.5, backoff_cap_s=8.0), rng=random.Random(7)
    )
    delays = [uploader.step() for _ in range(12)]
    for n, delay in enumerate(delays):
        assert 0.0 <= delay <= min(8.0, 0.5 * 2**n)
    assert len(set(delays)) == len(delays)  # jittered, not a fixed ladder
    assert max(delays[6:]) > 2.0  # it did grow
    assert uploader.state.state == "backoff"
    assert uploader.step() == 0.0  # the server is back
    assert uploader.backoff.failures == 0
    assert outbox.status().records == 0
    # every attempt carried the same record: nothing lost, nothing invented
    assert {b.records[0].seq for b in server.batches} == {server.batches[0].records[0].seq}


def test_retry_after_is_honoured(make_outbox: MakeOutbox) -> None:
    outbox = make_outbox()
    outbox.append("card.event", {})
    busy = ServerRejected("busy", 503, temporary=True, retry_after_s=120.0)
    uploader = Uploader(outbox, ScriptedServer(busy), policy(backoff_cap_s=5.0))
    assert uploader.step() >= 120.0
    assert outbox.status().records == 1
    assert parse_retry_after("30", now=0) == 30.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon", now=0) is None


def test_a_batch_refused_for_good_is_parked_with_its_reason_and_the_queue_moves_on(
    make_outbox: MakeOutbox,
) -> None:
    outbox = make_outbox()
    seqs = outbox.append_many([("card.event", {"n": i}) for i in range(15)])
    refused = ServerRejected("HTTP 422: batch records must be ...", 422)
    server = ScriptedServer(refused)
    uploader = Uploader(outbox, server, policy())
    assert uploader.step() == 0.0
    status = outbox.status()
    assert status.parked == 10
    assert "outbox.parked" in status.alarms
    assert outbox.parked_reasons()[0][0].startswith("HTTP 422")
    uploader.run(threading.Event(), until_empty=True, wait=lambda s: None)
    sent = [r.seq for b in server.batches[1:] for r in b.records]
    assert sent[:5] == seqs[10:]
    assert [r.header.kind for b in server.batches[1:] for r in b.records][5] == "outbox.parked"


def test_a_kiosk_the_server_refuses_is_blocked_but_keeps_its_records(
    make_outbox: MakeOutbox,
) -> None:
    outbox = make_outbox()
    outbox.append("card.event", {})
    server = ScriptedServer(ServerRejected("HTTP 403: revoked", 403))
    uploader = Uploader(outbox, server, policy(backoff_cap_s=60.0), rng=random.Random(1))
    delay = uploader.step()
    assert uploader.state.state == "blocked"
    assert 0 <= delay <= 60.0
    assert (outbox.status().records, outbox.status().parked) == (1, 0)


def test_a_batch_too_large_for_the_server_is_halved(make_outbox: MakeOutbox) -> None:
    outbox = make_outbox()
    outbox.append_many([("card.event", {"n": i}) for i in range(10)])
    server = ScriptedServer(ServerRejected("HTTP 413", 413))
    uploader = Uploader(outbox, server, policy())
    uploader.run(threading.Event(), until_empty=True, wait=lambda s: None)
    assert [len(b.records) for b in server.batches][:2] == [10, 5]
    assert outbox.status().parked == 0


def test_a_small_batch_waits_for_company_until_its_oldest_record_is_old_enough(
    make_outbox: MakeOutbox,
) -> None:
    now = [1000.0]
    outbox = make_outbox(monotonic_clock=lambda: int(now[0] * 1e9))
    outbox.append("card.event", {})
    server = ScriptedServer()
    uploader = Uploader(
        outbox,
        server,
        policy(batch_max_age_s=2.0, idle_poll_s=5.0),
        monotonic=lambda: now[0],
    )
    assert uploader.step() == pytest.approx(2.0)
    assert server.batches == []
    now[0] += 2.0
    assert uploader.step() == 0.0
    assert len(server.batches) == 1
    # a full batch leaves at once
    outbox.append_many([("card.event", {"n": i}) for i in range(10)])
    assert uploader.step() == 0.0
    assert len(server.batches[1].records) == 10


def test_backoff_bound_grows_to_the_cap() -> None:
    backoff = Backoff(1.0, 30.0, random.Random(3))
    bounds = []
    for _ in range(8):
        bounds.append(backoff.bound())
        backoff.next_delay()
    assert bounds == [1, 2, 4, 8, 16, 30, 30, 30]


def test_the_uploader_state_file_says_what_it_does(make_outbox: MakeOutbox, tmp_path: Path) -> None:
    outbox = make_outbox()
    outbox.append("card.event", {})
    state = tmp_path / "uploader.json"
    uploader = Uploader(
        outbox, ScriptedServer(ServerUnreachable("down")), policy(), state_file=state
    )
    uploader.step()
    assert '"state": "backoff"' in state.read_text()
    assert '"last_error": "server.unreachable"' in state.read_text()


# --- sending through the kiosk's clinic client ---------------------------------------------------


class MockClinic:
    """The batch endpoint behind the real ``ClinicClient``, answering from a script: a
    response, an exception, or "ack" (acknowledge every record sent)."""

    def __init__(self, *script: object) -> None:
        self.script = list(script)
        self.requests: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.script.pop(0) if self.script else "ack"
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        seqs = [record["seq"] for record in json.loads(request.content)["records"]]
        return httpx.Response(200, json={"acked": seqs, "high_water": max(seqs)})

    def client(self) -> ClinicClient:
        http = httpx.Client(
            base_url="https://clinic.test", transport=httpx.MockTransport(self.handle)
        )
        # the flow's retries stay on: a batch is never retried by the client all the same
        return ClinicClient(http, retries=2, sleep=lambda _: None)


def test_the_uploader_sends_through_the_clinic_client_and_deletes_what_was_acked(
    make_outbox: MakeOutbox,
) -> None:
    outbox = make_outbox()
    seqs = outbox.append_many([("card.event", {"n": i}) for i in range(3)])
    clinic = MockClinic()
    with clinic.client() as client:
        assert Uploader(outbox, client, policy()).step() == 0.0
    (request,) = clinic.requests
    assert (request.method, request.url.path) == ("POST", "/api/v1/outbox/batch")
    assert request.headers["Content-Type"] == "application/json"
    assert [r["seq"] for r in json.loads(request.content)["records"]] == seqs
    assert outbox.status().records == 0


def test_a_busy_server_s_retry_after_reaches_the_uploader_through_the_client(
    make_outbox: MakeOutbox,
) -> None:
    outbox = make_outbox()
    outbox.append("card.event", {})
    busy = httpx.Response(503, json={"detail": "busy"}, headers={"Retry-After": "30"})
    clinic = MockClinic(busy, busy)
    with clinic.client() as client:
        batch = Batch(outbox.device_id, tuple(queued(outbox)), Backlog(0, 0))
        with pytest.raises(ServerRejected) as refused:
            client.send_batch(batch)
        uploader = Uploader(outbox, client, policy(backoff_cap_s=5.0))
        delay = uploader.step()
    assert refused.value.status == 503
    assert refused.value.temporary
    assert refused.value.retry_after_s == 30.0
    assert len(clinic.requests) == 2, "one request each: the uploader does its own backing off"
    assert delay >= 30.0
    assert (uploader.state.state, uploader.state.last_error) == ("backoff", "server.503")
    assert outbox.status().records == 1


@pytest.mark.parametrize(
    ("answer", "error", "temporary"),
    [
        (httpx.ConnectError("refused"), ServerUnreachable, True),
        (httpx.ReadTimeout("slow"), ServerUnreachable, True),
        (httpx.Response(200, json={"acked": [999], "high_water": 999}), ServerRejected, True),
        (httpx.Response(200, content=b"<html>"), ServerRejected, True),
        (httpx.Response(422, json={"detail": "bad batch"}), ServerRejected, False),
        (httpx.Response(302, headers={"Location": "/elsewhere"}), ServerRejected, False),
    ],
)
def test_a_failed_batch_is_translated_once_by_the_client(
    make_outbox: MakeOutbox, answer: object, error: type, temporary: bool
) -> None:
    outbox = make_outbox()
    outbox.append("card.event", {})
    clinic = MockClinic(answer)
    with clinic.client() as client, pytest.raises(error) as caught:
        client.send_batch(Batch(outbox.device_id, tuple(queued(outbox)), Backlog(0, 0)))
    assert caught.value.temporary is temporary
    assert len(clinic.requests) == 1


def queued(outbox: Outbox) -> list[SealedRecord]:
    return outbox.pending(max_records=100, max_bytes=1 << 20)
