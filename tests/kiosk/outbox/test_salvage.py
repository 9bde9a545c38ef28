"""Salvage: a corrupted file is quarantined, its readable rows recovered, and the kiosk goes on.

Nothing the outbox had acknowledged (returned a sequence for) is lost, except rows physically
destroyed on a damaged page, which the server then sees as a gap.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from contract.sealing import OutboxPrivateKey
from tests.support.outbox import MakeOutbox, fill, queued


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


def _page_size(data: bytes) -> int:
    size = int.from_bytes(data[16:18], "big")
    return 65536 if size == 1 else size


def _leaf_pages(db: Path, table: str) -> list[int]:
    """The leaf pages of ``table``'s b-tree, found by walking it in the file itself.

    Reads the format (sqlite.org/fileformat2.html) rather than the optional ``dbstat`` table,
    so the test depends on no particular SQLite build.
    """
    conn = sqlite3.connect(db)
    try:
        [(root,)] = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchall()
    finally:
        conn.close()
    data = db.read_bytes()
    size = _page_size(data)
    leaves, todo = [], [root]
    while todo:
        page = todo.pop()
        start = (page - 1) * size
        header = start + (100 if page == 1 else 0)
        kind = data[header]
        if kind == 0x0D:  # a table leaf
            leaves.append(page)
            continue
        assert kind == 0x05, f"page {page} of {table} is no table b-tree page ({kind:#04x})"
        cells = int.from_bytes(data[header + 3 : header + 5], "big")
        todo.append(int.from_bytes(data[header + 8 : header + 12], "big"))  # right-most child
        for i in range(cells):
            at = header + 12 + 2 * i
            cell = start + int.from_bytes(data[at : at + 2], "big")
            todo.append(int.from_bytes(data[cell : cell + 4], "big"))  # left child
    return sorted(leaves)


def test_a_damaged_page_is_quarantined_and_every_readable_row_recovered(
    make_outbox: MakeOutbox, server_key: OutboxPrivateKey, tmp_path: Path
) -> None:
    outbox = make_outbox()
    seqs = fill(outbox, 300)
    outbox.close()  # the last connection checkpoints the WAL into the file
    db = tmp_path / "outbox" / "outbox.db"
    leaves = _leaf_pages(db, "records")
    victim = leaves[len(leaves) // 2]
    size = _page_size(db.read_bytes()[:100])
    with open(db, "r+b") as f:
        f.seek((victim - 1) * size)
        f.write(os.urandom(size))
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
