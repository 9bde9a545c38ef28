"""Fixtures of the outbox tests: the server's outbox key pair and outboxes in tmp folders."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.outbox.sealing import OutboxPrivateKey
from kiosk.outbox.store import Outbox

DEVICE = "kiosk-test-01"


@pytest.fixture(scope="session")
def server_key() -> OutboxPrivateKey:
    return OutboxPrivateKey.generate("mlkem768-x25519")


@pytest.fixture
def make_outbox(tmp_path: Path, server_key: OutboxPrivateKey) -> Iterator[Callable[..., Outbox]]:
    opened: list[Outbox] = []

    def make(path: Path | None = None, **kwargs: Any) -> Outbox:
        kwargs.setdefault("device_id", DEVICE)
        kwargs.setdefault("public_key", server_key.public_key())
        outbox = Outbox(path or tmp_path / "outbox" / "outbox.db", **kwargs)
        opened.append(outbox)
        return outbox

    yield make
    for outbox in opened:
        outbox.close()


def _run(*cmd: str) -> bool:
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small tmpfs at ``path`` (root only); skips the test where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    if not _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield path
    finally:
        _run("umount", "-l", str(path))


@contextlib.contextmanager
def ext4_that_can_fail(
    path: Path, image: Path, *, fresh: bool = True
) -> Iterator[Callable[[], None]]:
    """A small ext4 on a loop device mounted ``errors=remount-ro`` at ``path``.

    The callable makes the kernel report a file-system error (``trigger_fs_error``): ext4 then
    turns read-only under the open files, as an SD card going bad does. Skips where loop
    devices or mounting are not allowed.
    """
    path.mkdir(parents=True, exist_ok=True)
    if fresh:
        with open(image, "wb") as f:
            f.truncate(16 * 1024 * 1024)
        if not _run("mkfs.ext4", "-q", "-F", str(image)):
            pytest.skip("mkfs.ext4 is not available")
    if not _run("mount", "-o", "loop,errors=remount-ro", str(image), str(path)):
        pytest.skip("cannot mount a loop device here (needs root)")
    source = subprocess.run(
        ["findmnt", "-n", "-o", "SOURCE", str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()
    trigger = Path("/sys/fs/ext4") / Path(source).name / "trigger_fs_error"

    def fail() -> None:
        trigger.write_text("1")

    try:
        if not trigger.exists():
            pytest.skip("this kernel has no ext4 trigger_fs_error")
        yield fail
    finally:
        _run("umount", str(path))


DEVICES = (
    "kiosk-ingest",
    "kiosk-replay",
    "kiosk-gap",
    "kiosk-foreign",
    "kiosk-conflict",
    "kiosk-outage",
    "kiosk-crash-a",
    "kiosk-crash-b",
    "kiosk-dashboard",
    "kiosk-cli",
    "kiosk-sealed",
)


@pytest.fixture(scope="session")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One real clinic server (uvicorn, mutual TLS, ingest) on 127.0.0.1 for the session."""
    from kiosk.bench.outbox import LocalClinic

    server = LocalClinic(tmp_path_factory.mktemp("clinic"), DEVICES)
    with server:
        yield server
