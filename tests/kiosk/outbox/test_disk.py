"""The disk refusing: full, or turning read-only under the open database.

Each gives a clear state (``StorageUnavailable`` with its ``reason``) and loses nothing the
outbox had acknowledged.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from contract.sealing import OutboxPrivateKey
from kiosk.errors import StorageUnavailable
from kiosk.outbox.queue import Outbox
from tests.support.outbox import fill, queued
from tests.support.storage import ext4_that_can_fail, tmpfs


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
