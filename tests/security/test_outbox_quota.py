"""Smaller finding: no storage quota per kiosk for its log records.

One kiosk key stored 5,700 undecryptable records in half a second, every one acknowledged.
Each kiosk now has a quota of undecryptable records held and of records stored in any 24
hours; a batch that would pass it is refused whole with 507 (nothing acknowledged, so a real
kiosk keeps its records), counted on the dashboard's kiosk page and logged. A real server on
loopback, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from contract.outbox_record import Backlog, Batch, RecordHeader, SealedRecord
from contract.sealing import OutboxPublicKey
from kiosk.outbox.queue import Outbox
from tests.support.clinic import Clinic, Kiosk

UNDECRYPTABLE = 200
PER_DAY = 500
FLOOD = 5700
CLINIC_SETTINGS = {
    "outbox_quota_undecryptable": UNDECRYPTABLE,
    "outbox_quota_per_day": PER_DAY,
}


def garbage(device_id: str, count: int) -> list[SealedRecord]:
    """Records no key opens: well-formed headers, random bodies (what the flood sent)."""
    now = time.time_ns()
    return [
        SealedRecord(
            RecordHeader(
                device_id=device_id,
                seq=seq,
                prev=seq - 1,
                key=uuid.uuid4().hex,
                kind="flow.transition",
                wall_ns=now,
                mono_ns=seq,
                boot_id="flood",
                key_id="0" * 16,
            ),
            os.urandom(48),
        )
        for seq in range(1, count + 1)
    ]


def post(kiosk: Kiosk, records: list[SealedRecord]):
    body = Batch(kiosk.device_id, tuple(records), Backlog(0, 0)).to_json()
    return kiosk.http.post(
        "/api/v1/outbox/batch", content=body, headers={"Content-Type": "application/json"}
    )


def test_a_flood_of_undecryptable_records_stops_at_the_quota(clinic, caplog):
    kiosk = clinic.kiosk("kiosk-flood")
    records = garbage(kiosk.device_id, FLOOD)
    statuses = []
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="clinic.ingest"):
        for at in range(0, FLOOD, 100):
            statuses.append(post(kiosk, records[at : at + 100]))
    seconds = time.monotonic() - started
    accepted = [a for a in statuses if a.status_code == 200]
    refused = [a for a in statuses if a.status_code != 200]
    held = clinic.context.extras["ingest"].kiosks()["kiosk-flood"]
    print(
        f"\n[{clinic.backend}] {FLOOD} undecryptable records offered in {len(statuses)} batches "
        f"({seconds:.2f} s): {held.undecryptable} stored, {len(accepted)} batches acknowledged, "
        f"{len(refused)} refused with {sorted({a.status_code for a in refused})}"
    )
    assert held.undecryptable == UNDECRYPTABLE
    assert held.records == UNDECRYPTABLE
    assert len(accepted) == UNDECRYPTABLE // 100
    assert {a.status_code for a in refused} == {507}
    assert "undecryptable" in refused[0].json()["detail"]
    assert held.refused == len(refused)
    assert any("batch refused" in r.getMessage() for r in caplog.records)
    with clinic.staff_client() as staff:
        assert clinic.login(staff).status_code == 303
        page = staff.get("/kiosks").text
    row = page[page.index("<td>kiosk-flood</td>") :]
    row = row[: row.index("</tr>")]
    assert "outbox alarm" in row
    assert "over quota" in row


def sealed_records(clinic: Clinic, kiosk: Kiosk, count: int, tmp_path: Path):
    public = OutboxPublicKey.load(clinic.config.data_dir / "outbox.pub.json")
    with Outbox(tmp_path / "box.db", device_id=kiosk.device_id, public_key=public) as box:
        box.append_many(("flow.transition", {"i": i}) for i in range(count))
        return box.pending(max_records=count, max_bytes=1 << 30)


@pytest.fixture
def clock(clinic: Clinic) -> Iterator[None]:
    yield
    clinic.clock.offset = 0.0


def test_a_kiosk_stores_at_most_its_daily_quota(clinic, tmp_path, clock):
    kiosk = clinic.kiosk("kiosk-chatty")
    records = sealed_records(clinic, kiosk, PER_DAY + 60, tmp_path)
    answers = [post(kiosk, records[at : at + 20]) for at in range(0, len(records), 20)]
    stored = clinic.context.extras["ingest"].kiosks()["kiosk-chatty"].records
    codes = [a.status_code for a in answers]
    print(
        f"\n[{clinic.backend}] {len(records)} records in one day: {stored} stored, "
        f"{codes.count(507)} batches refused"
    )
    assert stored == PER_DAY
    assert codes == [200] * (PER_DAY // 20) + [507] * (len(answers) - PER_DAY // 20)
    assert "a day" in answers[-1].json()["detail"]
    # what was acknowledged is kept; a batch sent again later is still a duplicate
    assert post(kiosk, records[:20]).status_code == 200
    # a day later the kiosk may store again
    clinic.clock.offset = 86400 + 60
    later = clinic.connect(kiosk.cert_path, kiosk.key_path, clock=clinic.clock)
    try:
        assert post(later, records[PER_DAY : PER_DAY + 20]).status_code == 200
    finally:
        later.close()
