"""Damage: a corrupted file, a full disk, a read-only file system; and what a thief reads.

Each gives a clear state and loses nothing the outbox had acknowledged (returned a sequence
for), except rows physically destroyed on a damaged page, which the server then sees as a gap.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.errors import StorageUnavailable
from kiosk.outbox.sealing import OutboxPrivateKey
from kiosk.outbox.store import Outbox
from tests.outbox.conftest import ext4_that_can_fail, tmpfs

MakeOutbox = Callable[..., Outbox]


def queued(outbox: Outbox, key: OutboxPrivateKey) -> list[tuple[int, str, dict]]:
    opener = key.opener()
    return [
        (r.seq, r.header.kind, json.loads(opener.open(r.sealed, r.header)))
        for r in outbox.pending(max_records=100_000, max_bytes=1 << 40)
    ]


def fill(outbox: Outbox, n: int) -> list[int]:
    return [outbox.append("card.event", {"n": i, "pad": "p" * 200}) for i in range(n)]


def test_a_file_that_is_not_a_database_is_quarantined_and_the_kiosk_goes_on(
    make_outbox: MakeOutbox, server_key: OutboxPrivateKey, tmp_path: Path
) -> None:
    first = make_outbox()
    before = fill(first, 3)
    first.close()  # checkpointed: the WAL, which holds a good copy of page 1, is gone
    db = tmp_path / "outbox" / "outbox.db"
    db.write_bytes(b"this is no database at all" * 200)
    outbox = make_outbox()
    status = outbox.status()
    assert status.quarantined == 1
    assert len(status.quarantine_files) == 1
    assert "outbox.quarantined" in status.alarms
    assert (tmp_path / "outbox" / status.quarantine_files[0]).read_bytes().startswith(b"this is")
    [(seq, kind, notice)] = queued(outbox, server_key)
    assert kind == "outbox.quarantined"
    assert notice["recovered"] == 0
    assert "header" in notice["problem"]
    # the epoch file outlived the database: numbers still rise
    assert seq > max(before)
    assert outbox.append("card.event", {}) > seq


def _leaf_pages(db: Path, table: str) -> list[int]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno",
            (table,),
        ).fetchall()
    except sqlite3.OperationalError:
        pytest.skip("this SQLite has no dbstat table")
    finally:
        conn.close()
    return [r[0] for r in rows]


def test_a_damaged_page_is_quarantined_and_every_readable_row_recovered(
    make_outbox: MakeOutbox, server_key: OutboxPrivateKey, tmp_path: Path
) -> None:
    outbox = make_outbox()
    seqs = fill(outbox, 300)
    outbox.close()  # the last connection checkpoints the WAL into the file
    db = tmp_path / "outbox" / "outbox.db"
    leaves = _leaf_pages(db, "records")
    victim = leaves[len(leaves) // 2]
    with open(db, "r+b") as f:
        f.seek((victim - 1) * 4096)
        f.write(os.urandom(4096))
    recovered = make_outbox()
    status = recovered.status()
    assert status.quarantined == 1
    records = queued(recovered, server_key)
    notice = records[-1]
    assert notice[1] == "outbox.quarantined"
    kept = [seq for seq, kind, _ in records if kind == "card.event"]
    assert set(kept) <= set(seqs)
    lost = len(seqs) - len(kept)
    assert 0 < lost <= 4  # one leaf page's rows, no more
    assert notice[2]["recovered"] == len(kept)
    assert status.records == len(kept) + 1
    # the rows before and after the damage are there, in order
    assert kept[0] == seqs[0]
    assert kept[-1] == seqs[-1]
    assert recovered.append("card.event", {}) > seqs[-1]


def test_a_truncated_file_is_quarantined(
    make_outbox: MakeOutbox, server_key: OutboxPrivateKey, tmp_path: Path
) -> None:
    outbox = make_outbox()
    seqs = fill(outbox, 100)
    outbox.close()
    db = tmp_path / "outbox" / "outbox.db"
    size = db.stat().st_size
    with open(db, "r+b") as f:
        f.truncate(size // 2)
    recovered = make_outbox()
    assert recovered.status().quarantined == 1
    kept = [s for s, kind, _ in queued(recovered, server_key) if kind == "card.event"]
    assert set(kept) <= set(seqs)
    assert recovered.append("card.event", {}) > seqs[-1]


def test_a_full_disk_refuses_the_record_clearly_and_keeps_the_others(
    server_key: OutboxPrivateKey, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "small", "1m") as mount:
        ballast = mount / "ballast"
        ballast.write_bytes(b"\0" * 600_000)
        outbox = Outbox(
            mount / "outbox.db", device_id="kiosk-1", public_key=server_key.public_key()
        )
        try:
            acknowledged: list[int] = []
            refusal = None
            for i in range(2000):
                try:
                    acknowledged.append(outbox.append("card.event", {"n": i, "pad": "x" * 500}))
                except StorageUnavailable as exc:
                    refusal = exc
                    break
            assert refusal is not None
            assert refusal.reason == "disk_full"
            assert refusal.temporary
            assert len(acknowledged) > 20
            outbox.close()
            # a process that only drains still opens on the full disk
            drainer = Outbox(
                mount / "outbox.db", device_id="kiosk-1", public_key=server_key.public_key()
            )
            try:
                got = [s for s, k, _ in queued(drainer, server_key) if k == "card.event"]
                assert got == acknowledged
                ballast.unlink()  # space again
                assert drainer.append("card.event", {"n": "again"}) > acknowledged[-1]
            finally:
                drainer.close()
        finally:
            outbox.close()


def test_a_file_system_turning_read_only_gives_a_clear_state_and_keeps_the_records(
    server_key: OutboxPrivateKey, tmp_path: Path
) -> None:
    folder = tmp_path / "sd"
    with ext4_that_can_fail(folder, tmp_path / "sd.img") as fs_error:
        outbox = Outbox(
            folder / "outbox.db", device_id="kiosk-1", public_key=server_key.public_key()
        )
        try:
            acknowledged = fill(outbox, 5)
            fs_error()  # ext4 remounts read-only under the open database
            with pytest.raises(StorageUnavailable) as caught:
                outbox.append("card.event", {"n": "lost?"})
            assert caught.value.reason == "read_only"
            assert caught.value.temporary
        finally:
            outbox.close()
        with pytest.raises(StorageUnavailable) as caught:
            Outbox(folder / "outbox.db", device_id="kiosk-1", public_key=server_key.public_key())
        assert caught.value.reason == "read_only"
    # after a repair (fsck) the records are all there
    assert subprocess.run(
        ["e2fsck", "-fy", str(tmp_path / "sd.img")], capture_output=True
    ).returncode in (0, 1)
    with ext4_that_can_fail(folder, tmp_path / "sd.img", fresh=False):
        again = Outbox(
            folder / "outbox.db", device_id="kiosk-1", public_key=server_key.public_key()
        )
        try:
            got = [s for s, k, _ in queued(again, server_key) if k == "card.event"]
            assert got == acknowledged
            assert again.append("card.event", {}) > acknowledged[-1]
        finally:
            again.close()


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
