"""The queue: durable appends, the size bound, what the uploader reads, acknowledges and parks.

And what whoever takes the SD card reads: sealed records, no patient data.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ec

from contract.errors import ConfigError
from contract.sealing import OutboxPrivateKey
from kiosk.errors import OutboxFull
from kiosk.outbox.records import wire_size
from tests.support.outbox import MakeOutbox, opened, queued


def test_append_is_durable_and_survives_reopening(
    make_outbox: MakeOutbox, server_key: OutboxPrivateKey, tmp_path: Path
) -> None:
    outbox = make_outbox()
    seqs = [outbox.append("card.event", {"n": i}) for i in range(5)]
    conn = outbox._db()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: fsync per commit
    outbox.close()
    again = make_outbox()
    assert [(s, p["n"]) for s, _, _, p in opened(again, server_key)] == list(
        zip(seqs, range(5), strict=True)
    )


def test_the_alarm_comes_long_before_anything_is_refused(
    make_outbox: MakeOutbox, server_key: OutboxPrivateKey
) -> None:
    outbox = make_outbox(max_bytes=128 * 1024, warn_fraction=0.5)
    levels = []
    appended = 0
    refused = False
    while not refused and appended < 1000:
        try:
            outbox.append("card.event", {"pad": "x" * 300})
        except OutboxFull:
            refused = True
            continue
        appended += 1
        levels.append(outbox.status().level)
    assert refused
    first_warning = levels.index("warning")
    assert first_warning < appended * 0.6  # warned at half, refused only when full
    status = outbox.status()
    assert status.level == "full"
    assert status.refused == 1
    assert "outbox.full" in status.alarms
    notices = [p for _, _, kind, p in opened(outbox, server_key) if kind == "outbox.level"]
    assert [n["level"] for n in notices] == ["warning", "full"]
    assert notices[1]["refused"] == 1
    # nothing appended was dropped to make room
    assert sum(1 for r in opened(outbox, server_key) if r[2] == "card.event") == appended
    # the uploader drains: appends work again and the level says so
    outbox.acknowledge([r.seq for r in outbox.pending(max_records=10_000, max_bytes=1 << 30)])
    outbox.append("card.event", {"after": True})
    assert outbox.status().level == "ok"


def test_payload_errors_never_echo_the_payload(make_outbox: MakeOutbox) -> None:
    outbox = make_outbox()
    with pytest.raises(ValueError, match="plain JSON") as caught:
        outbox.append("card.event", {"name": "山田太郎", "when": object()})
    assert "山田" not in str(caught.value)
    with pytest.raises(ValueError, match="kind"):
        outbox.append("Card Event!", {})
    with pytest.raises(ValueError, match="at most"):
        outbox.append("card.event", {"big": "x" * 17_000})
    assert outbox.status().records == 0


def test_an_outbox_of_another_device_is_refused(make_outbox: MakeOutbox) -> None:
    make_outbox().close()
    with pytest.raises(ConfigError, match=r"holds the outbox of device"):
        make_outbox(device_id="kiosk-other")


def test_parked_records_are_kept_with_their_reason_and_can_be_queued_again(
    make_outbox: MakeOutbox, server_key: OutboxPrivateKey
) -> None:
    outbox = make_outbox()
    seqs = [outbox.append("card.event", {"n": i}) for i in range(3)]
    assert outbox.park(seqs[:2], "HTTP 422: bad batch") == 2
    status = outbox.status()
    assert (status.records, status.parked) == (2, 2)  # one left + the outbox.parked notice
    assert "outbox.parked" in status.alarms
    assert outbox.parked_reasons() == [("HTTP 422: bad batch", 2)]
    notice = [p for _, _, k, p in opened(outbox, server_key) if k == "outbox.parked"]
    assert notice == [
        {"count": 2, "first": seqs[0], "last": seqs[1], "reason": "HTTP 422: bad batch"}
    ]
    assert outbox.unpark() == 2
    assert outbox.status().parked == 0
    assert [r.seq for r in outbox.pending(max_records=10, max_bytes=1 << 20)][:3] == seqs


def test_acknowledge_deletes_exactly_what_was_acknowledged(make_outbox: MakeOutbox) -> None:
    outbox = make_outbox()
    seqs = [outbox.append("card.event", {"n": i}) for i in range(10)]
    assert outbox.acknowledge([seqs[1], seqs[3], 12345]) == 2
    left = [r.seq for r in outbox.pending(max_records=100, max_bytes=1 << 20)]
    assert left == [s for s in seqs if s not in (seqs[1], seqs[3])]
    status = outbox.status()
    assert status.records == 8
    raw = outbox._db().execute("SELECT sum(length(sealed)) + count(*) * 160 FROM records")
    assert status.bytes == raw.fetchone()[0]


def test_pending_respects_both_bounds(make_outbox: MakeOutbox) -> None:
    outbox = make_outbox()
    outbox.append_many([("card.event", {"n": i}) for i in range(20)])
    assert len(outbox.pending(max_records=7, max_bytes=1 << 20)) == 7
    one = outbox.pending(max_records=1, max_bytes=1 << 20)[0]
    size = wire_size(len(one.sealed))
    assert len(outbox.pending(max_records=20, max_bytes=size * 3)) == 3
    assert len(outbox.pending(max_records=20, max_bytes=1)) == 1  # never an empty batch


def test_a_quarantined_file_under_a_running_process_is_followed(
    make_outbox: MakeOutbox, tmp_path: Path
) -> None:
    first = make_outbox()
    first.append("card.event", {})
    db = tmp_path / "outbox" / "outbox.db"
    aside = tmp_path / "outbox" / "outbox.db.corrupt-x"
    db.rename(aside)
    for suffix in ("-wal", "-shm"):
        if Path(str(db) + suffix).exists():
            Path(str(db) + suffix).rename(Path(str(aside) + suffix))
    seq = first.append("card.event", {"after": True})  # reopens the fresh file
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT seq FROM records").fetchall() == [(seq,)]
    finally:
        conn.close()


PATIENT = {
    "name": "山田太郎",
    "name_kana": "ヤマダタロウ",
    "insurer_number": "06139832",
    "insured_number": "12345678",
    "birthdate": "19580417",
}


def test_the_outbox_files_hold_no_patient_data_for_whoever_takes_the_card(
    make_outbox: MakeOutbox, server_key: OutboxPrivateKey, tmp_path: Path
) -> None:
    outbox = make_outbox()
    for i in range(20):
        outbox.append("verification.outcome", {**PATIENT, "i": i})
    # what a thief holds: every file of the folder, WAL included, and the kiosk's own keys
    raw = b"".join(p.read_bytes() for p in (tmp_path / "outbox").iterdir() if p.is_file())
    assert len(raw) > 20 * 1000
    for value in PATIENT.values():
        for encoding in ("utf-8", "utf-16-le", "utf-16-be", "shift_jis", "euc_jp"):
            try:
                needle = value.encode(encoding)
            except UnicodeEncodeError:
                continue
            assert needle not in raw, (value, encoding)
    device_key = ec.generate_private_key(ec.SECP256R1())  # the device / TLS key kind
    suite = hpke.Suite(hpke.KEM.P256, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
    for record in outbox.pending(max_records=100, max_bytes=1 << 30):
        with pytest.raises(Exception):  # noqa: B017, PT011 - it must not open, however it fails
            suite.decrypt(record.sealed, device_key, info=record.header.info())
    # while the server opens every one
    assert all(p["name"] == "山田太郎" for _, _, p in queued(outbox, server_key))
