"""The clinic server's side, over real mutual TLS: dedupe, conflicts, gaps, a long outage."""

from __future__ import annotations

import dataclasses
import json
import random
import threading
from pathlib import Path
from typing import Any

import pytest

from contract.outbox_record import Backlog, Batch, BatchAck, SealedRecord
from contract.sealing import OutboxPrivateKey, OutboxPublicKey
from kiosk.clinic_client import ClinicClient
from kiosk.errors import ServerRejected, ServerUnreachable
from kiosk.outbox.queue import Outbox
from kiosk.outbox.uploader import Uploader, UploadPolicy


def outbox_for(local_clinic: Any, device: str, folder: Path, **kwargs: Any) -> Outbox:
    public = OutboxPublicKey.load(local_clinic.kiosks[device].outbox_public_key)
    kwargs.setdefault("public_key", public)
    return Outbox(folder / f"{device}.db", device_id=device, **kwargs)


def queued(outbox: Outbox) -> list[SealedRecord]:
    return outbox.pending(max_records=10_000, max_bytes=1 << 40)


def send(
    local_clinic: Any, device: str, records: list[SealedRecord], backlog: int = 0, *, name: str = ""
) -> BatchAck:
    with ClinicClient(local_clinic.http_client(device), retries=0) as client:
        batch = Batch(name or device, tuple(records), Backlog(backlog, backlog * 1000))
        return client.send_batch(batch)


def test_records_are_decrypted_and_stored_once_even_when_a_batch_is_replayed(
    local_clinic: Any, tmp_path: Path
) -> None:
    device = "kiosk-replay"
    with outbox_for(local_clinic, device, tmp_path) as outbox:
        seqs = [outbox.append("staff.action", {"action": "visual_ok", "n": i}) for i in range(5)]
        records = queued(outbox)
    first = send(local_clinic, device, records)
    again = send(local_clinic, device, records)  # the ack was lost: the uploader sends it again
    assert list(first.acked) == seqs
    assert first.duplicates == 0
    assert list(again.acked) == seqs
    assert again.duplicates == 5
    assert first.high_water == seqs[-1]
    with local_clinic.ingest() as ingest:
        stored = ingest.records_of(device)
        view = ingest.kiosks()[device]
    assert [r["seq"] for r in stored] == seqs
    assert [json.loads(r["payload"])["n"] for r in stored] == list(range(5))
    assert (view.records, view.duplicates, view.gaps, view.conflicts) == (5, 5, 0, 0)


def test_a_gap_is_seen_until_the_missing_records_arrive(local_clinic: Any, tmp_path: Path) -> None:
    device = "kiosk-gap"
    with outbox_for(local_clinic, device, tmp_path) as outbox:
        outbox.append_many([("card.event", {"n": i}) for i in range(6)])
        r = queued(outbox)
    send(local_clinic, device, r[:2])
    send(local_clinic, device, r[4:], backlog=2)
    with local_clinic.ingest() as ingest:
        assert ingest.kiosks()[device].gaps == 1
        assert ingest.kiosks()[device].backlog_records == 2
    send(local_clinic, device, r[2:4])
    with local_clinic.ingest() as ingest:
        assert ingest.kiosks()[device].gaps == 0


def test_the_same_sequence_with_another_record_is_kept_as_a_conflict(
    local_clinic: Any, tmp_path: Path
) -> None:
    device = "kiosk-conflict"
    with outbox_for(local_clinic, device, tmp_path) as outbox:
        outbox.append("card.event", {"n": 1})
        [record] = queued(outbox)
    send(local_clinic, device, [record])
    # a restored card with its clock set back hands out the same number for another record
    other_key = dataclasses.replace(record.header, key="f" * 32)
    twin = SealedRecord(other_key, record.sealed)
    ack = send(local_clinic, device, [twin])
    assert list(ack.acked) == [record.seq]
    assert list(ack.conflicts) == [record.seq]
    with local_clinic.ingest() as ingest:
        assert ingest.kiosks()[device].conflicts == 1
        assert len(ingest.records_of(device)) == 1


def test_a_record_moved_to_another_kiosk_does_not_open_and_is_kept_sealed(
    local_clinic: Any, tmp_path: Path
) -> None:
    with outbox_for(local_clinic, "kiosk-ingest", tmp_path) as outbox:
        outbox.append("card.event", {"n": 1})
        records = queued(outbox)
    send(local_clinic, "kiosk-foreign", records)  # the header's device id is bound into the seal
    with local_clinic.ingest() as ingest:
        assert ingest.kiosks()["kiosk-foreign"].undecryptable == 1


def test_a_body_sealed_to_another_key_is_kept_sealed_and_counted(
    local_clinic: Any, tmp_path: Path
) -> None:
    device = "kiosk-sealed"
    stranger = OutboxPrivateKey.generate().public_key()
    with outbox_for(local_clinic, device, tmp_path, public_key=stranger) as outbox:
        outbox.append("card.event", {"n": 1})
        records = queued(outbox)
    ack = send(local_clinic, device, records)
    assert list(ack.acked) == [records[0].seq]
    with local_clinic.ingest() as ingest:
        assert ingest.kiosks()[device].undecryptable == 1
        assert ingest.records_of(device)[0]["payload"] is None


def test_a_batch_naming_another_kiosk_is_refused_for_good(
    local_clinic: Any, tmp_path: Path
) -> None:
    with outbox_for(local_clinic, "kiosk-ingest", tmp_path) as outbox:
        outbox.append("card.event", {})
        records = queued(outbox)
    with pytest.raises(ServerRejected) as caught:
        send(local_clinic, "kiosk-foreign", records, name="kiosk-ingest")  # signed by another kiosk
    assert caught.value.status == 422
    assert not caught.value.temporary


class SimulatedTime:
    """The uploader's clock and sleep, and a server that is down until a moment."""

    def __init__(self, real: ClinicClient, down_until: float) -> None:
        self.now = 0.0
        self.real = real
        self.down_until = down_until
        self.attempts_while_down = 0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def send_batch(self, batch: Batch) -> BatchAck:
        if self.now < self.down_until:
            self.attempts_while_down += 1
            raise ServerUnreachable("connection refused (simulated outage)")
        return self.real.send_batch(batch)


def test_after_a_long_outage_ten_thousand_records_arrive_in_order_within_the_bound(
    local_clinic: Any, tmp_path: Path
) -> None:
    device = "kiosk-outage"
    cap = 300.0
    outage = 8 * 3600.0  # a working day without the server
    with (
        outbox_for(local_clinic, device, tmp_path) as outbox,
        ClinicClient(local_clinic.http_client(device), retries=0) as client,
    ):
        world = SimulatedTime(client, down_until=outage)
        uploader = Uploader(
            outbox,
            world,
            UploadPolicy(batch_max_age_s=0, backoff_base_s=1.0, backoff_cap_s=cap),
            rng=random.Random(5),
        )
        appended: list[int] = []
        while len(appended) < 10_000:  # the kiosk keeps logging while the server is away
            n = min(250, 10_000 - len(appended))
            appended += outbox.append_many([("flow.transition", {"i": len(appended) + k})
                                            for k in range(n)])  # fmt: skip
            world.sleep(uploader.step())
        assert world.now < outage
        assert outbox.status().records == 10_000
        while world.now < outage:
            world.sleep(uploader.step())
        assert outbox.status().records == 10_000  # nothing dropped while waiting
        back = world.now
        uploader.run(threading.Event(), until_empty=True, wait=world.sleep)
        finished = world.now
    assert finished - outage <= cap  # the first try after the return came within the cap
    assert finished - back <= cap
    assert world.attempts_while_down < 200  # backed off rather than hammering
    with local_clinic.ingest() as ingest:
        stored = ingest.records_of(device)
        view = ingest.kiosks()[device]
    assert [r["seq"] for r in stored] == appended  # arrival order is sequence order
    assert [json.loads(r["payload"])["i"] for r in stored] == list(range(10_000))
    assert (view.records, view.gaps, view.duplicates) == (10_000, 0, 0)


def test_the_dashboard_kiosk_page_shows_backlog_last_upload_and_gaps(
    local_clinic: Any, tmp_path: Path
) -> None:
    import re
    import ssl

    import httpx

    from testbed.local_clinic import PASSWORD

    device = "kiosk-dashboard"
    with outbox_for(local_clinic, device, tmp_path) as outbox:
        outbox.append_many([("card.event", {"n": i}) for i in range(4)])
        r = queued(outbox)
    send(local_clinic, device, [r[0], r[2]], backlog=7)  # r[1] missing: a gap
    ca = ssl.create_default_context(cafile=str(local_clinic.kiosks[device].server_ca))
    with httpx.Client(base_url=f"https://127.0.0.1:{local_clinic.staff_port}", verify=ca) as staff:
        form = staff.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        staff.post(
            "/login",
            data={"csrf": csrf.group(1), "next": "/", "username": "admin", "password": PASSWORD},
        )
        page = staff.get("/kiosks").text  # in Japanese, the staff's default
    assert device in page
    assert "未送信 7" in page
    assert "欠番 1" in page
    assert "最終送信 20" in page
