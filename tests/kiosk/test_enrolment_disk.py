"""``kiosk enrol`` on a data partition that is full or has turned read-only: exit 5, one line,
and the identity already there (if any) untouched. Real file systems (root only), from
:mod:`tests.support.storage`."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from kiosk.cli import main as kiosk
from tests.kiosk.test_enrolment import tree
from tests.support.enrolment import clinic_data_dir, issue_bundle
from tests.support.storage import ext4_that_can_fail, tmpfs

INSTALL_FAILED = 5


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("enrol-disk")
    path = root / "unit-1.tar"
    assert issue_bundle(clinic_data_dir(root), "unit-1", path) == 0
    return path


def fill(folder: Path) -> None:
    """Write into ``folder`` until its file system has no byte left."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError, match="No space left") as full:  # noqa: PT012 - until full
            while True:
                os.write(fd, b"\0" * 4096)
        assert full.value.errno == errno.ENOSPC
    finally:
        os.close(fd)


def test_a_full_data_partition_refuses_a_first_enrolment(tmp_path, bundle, capsys):
    with tmpfs(tmp_path / "data", "1m") as data:
        fill(data)
        before = tree(data)
        assert kiosk(["enrol", str(bundle), "--into", str(data / "identity")]) == INSTALL_FAILED
        err = capsys.readouterr().err
        assert "the file system is full" in err
        assert len(err.strip().splitlines()) == 1
        assert tree(data) == before


def test_a_full_data_partition_keeps_the_identity_it_has(tmp_path, bundle, capsys):
    with tmpfs(tmp_path / "data", "1m") as data:
        into = data / "identity"
        assert kiosk(["enrol", str(bundle), "--into", str(into)]) == 0
        fill(data)
        before = tree(data)
        assert kiosk(["enrol", str(bundle), "--into", str(into), "--again"]) == INSTALL_FAILED
        assert "the file system is full" in capsys.readouterr().err
        assert tree(data) == before


def test_a_data_partition_turned_read_only_keeps_the_identity_it_has(tmp_path, bundle, capsys):
    data = tmp_path / "data"
    with ext4_that_can_fail(data, tmp_path / "sd.img") as fs_error:
        into = data / "identity"
        assert kiosk(["enrol", str(bundle), "--into", str(into)]) == 0
        before = tree(into)
        fs_error()  # ext4 remounts read-only, as a failing SD card does
        capsys.readouterr()
        assert kiosk(["enrol", str(bundle), "--into", str(into), "--again"]) == INSTALL_FAILED
        assert "the file system is read-only" in capsys.readouterr().err
        assert kiosk(["enrol", str(bundle), "--into", str(data / "other")]) == INSTALL_FAILED
        assert "read-only" in capsys.readouterr().err
        assert tree(into) == before
        assert sorted(p.name for p in data.iterdir() if p.name != "lost+found") == ["identity"]
