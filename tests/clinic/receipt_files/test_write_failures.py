"""A folder that cannot take a file (missing, full, read-only): the dashboard says so, the
file is retried, and in the end every completed check is one file - none lost, none twice."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import httpx
import pytest

from clinic.receipt_files.queue import ReceiptQueue
from tests.clinic.receipt_files.conftest import folder_of, wait_for
from tests.support.clinic import Clinic, csrf_of
from tests.support.storage import ext4_that_can_fail, tmpfs


def _queue(clinic: Clinic) -> ReceiptQueue:
    queue = clinic.context.extras["receipt_files"]
    assert isinstance(queue, ReceiptQueue)
    return queue


def _files_of(folder: Path, verification_id: str) -> list[Path]:
    return sorted(folder.glob(f"OQSsiquc01res_face_{verification_id}_*.xml"))


def _check(clinic: Clinic, kiosk: str) -> str:
    result = clinic.kiosk(kiosk).check(clinic.card("valid-employee"), "pin")
    assert result.eligible
    return result.verification_id


def _failing_with(clinic: Clinic, code: str, ids: list[str]) -> None:
    def failing() -> bool:
        problems = {p.verification_id: p for p in _queue(clinic).problems()}
        return all(i in problems and problems[i].error_code == code for i in ids)

    wait_for(failing, f"the files to fail with {code}")


def _write_forever(fd: int) -> None:
    while True:
        os.write(fd, b"\0" * 4096)


def _fill(folder: Path) -> Path:
    """Fill the file system up to the last byte."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError, match="No space left") as raised:
            _write_forever(fd)
        assert raised.value.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def test_a_missing_folder_is_shown_and_retried_without_loss(
    receipt_clinic: Clinic, receipt_staff: httpx.Client
) -> None:
    folder = folder_of(receipt_clinic)
    away = folder.with_name("oqs-away")
    folder.rename(away)
    try:
        ids = [_check(receipt_clinic, "kiosk-missing") for _ in range(2)]
        _failing_with(receipt_clinic, "missing", ids)
        page = receipt_staff.get("/").text
        assert 'id="receipt-notice"' in page
        assert "フォルダがありません" in page
        assert str(folder) in page
    finally:
        away.rename(folder)
    answer = receipt_staff.post(
        "/receipt-files/retry", data={"csrf": csrf_of(receipt_staff), "next": "/"}
    )
    assert answer.status_code == 303
    for verification_id in ids:
        assert len(_files_of(folder, verification_id)) == 1
    assert 'id="receipt-notice"' not in receipt_staff.get("/").text


def test_a_full_disk_is_retried_once_there_is_room(receipt_clinic: Clinic) -> None:
    folder = folder_of(receipt_clinic)
    with tmpfs(folder, "256k"):
        filler = _fill(folder)
        verification_id = _check(receipt_clinic, "kiosk-full")
        _failing_with(receipt_clinic, "full", [verification_id])
        assert not list(folder.glob(".*.part")), "the partial file is removed"
        filler.unlink()
        _queue(receipt_clinic).retry_now()
        wait_for(lambda: len(_files_of(folder, verification_id)) == 1, "the file after room")
        # the row is marked written just after the rename
        wait_for(lambda: not _queue(receipt_clinic).problems(), "the problem to clear")


def test_a_file_system_gone_read_only_is_retried_after_it_comes_back(
    receipt_clinic: Clinic, tmp_path: Path
) -> None:
    folder = folder_of(receipt_clinic)
    image = tmp_path / "share.img"
    with ext4_that_can_fail(folder, image) as fail:
        fail()  # the kernel turns the file system read-only under the server
        verification_id = _check(receipt_clinic, "kiosk-ro")
        _failing_with(receipt_clinic, "read_only", [verification_id])
    with ext4_that_can_fail(folder, image, fresh=False):
        _queue(receipt_clinic).retry_now()
        wait_for(lambda: len(_files_of(folder, verification_id)) == 1, "the file after remount")


def test_a_file_written_before_a_crash_is_not_written_twice(receipt_clinic: Clinic) -> None:
    folder = folder_of(receipt_clinic)
    verification_id = _check(receipt_clinic, "kiosk-crash")
    wait_for(lambda: len(_files_of(folder, verification_id)) == 1, "the first write")
    (first,) = _files_of(folder, verification_id)
    content = first.read_bytes()
    # as if the server stopped between the rename and marking the row written
    with receipt_clinic.context.db.transaction(write=True) as tx:
        tx.execute(
            "UPDATE receipt_files SET state = 'pending', written_at = NULL"
            " WHERE verification_id = ?",
            (verification_id,),
        )
    wait_for(
        lambda: _queue(receipt_clinic).status_of(verification_id)["state"] == "written",  # type: ignore[index]
        "the second write",
    )
    assert _files_of(folder, verification_id) == [first]
    assert first.read_bytes() == content
    assert os.stat(first).st_nlink == 1
