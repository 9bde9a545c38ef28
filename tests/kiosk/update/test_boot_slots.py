"""The A/B rule and the two places a boot reads it: GRUB's environment block, autoboot.txt."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kiosk.errors import BootSlotError
from kiosk.update.boot_slots import (
    ENV_BLOCK_SIZE,
    BootSlots,
    GrubEnvironment,
    PiAutoboot,
    render_env_block,
)
from tests.image.conftest import load_builder


def test_a_tried_slot_boots_once_and_is_committed_only_when_marked_good() -> None:
    slots = BootSlots("A")
    tried = slots.try_next("B")
    assert tried.primary() == "B"
    assert tried.committed == "A"
    assert tried.state("B") == "good"  # waiting to be tried
    committed = tried.mark_good("B")
    assert committed == BootSlots("B")
    assert committed.state("A") == "bad"  # the old slot is now the one to overwrite


def test_a_slot_marked_bad_drops_its_try_and_the_committed_slot_cannot_be_marked_bad() -> None:
    tried = BootSlots("A").try_next("B")
    assert tried.mark_bad("B") == BootSlots("A")
    with pytest.raises(BootSlotError, match="committed"):
        tried.mark_bad("A")
    assert BootSlots("A").try_next("A") == BootSlots("A")  # trying the committed one: no try


def test_unknown_slots_are_refused() -> None:
    with pytest.raises(BootSlotError, match="slots are A and B"):
        BootSlots("C")
    with pytest.raises(BootSlotError):
        BootSlots("A").try_next("rootfs.1")


@pytest.fixture
def env_block(tmp_path: Path) -> Path:
    """The block as the image build writes it beside the GRUB script."""
    path = tmp_path / "bootslot.env"
    path.write_bytes(
        load_builder().grub_env_block(
            {"ONSHI_SLOT": "A", "ONSHI_TRY": "", "ONSHI_KERNEL_ARGS": "quiet"}
        )
    )
    return path


def test_the_grub_block_is_written_in_place_and_keeps_other_variables(env_block: Path) -> None:
    store = GrubEnvironment(env_block)
    inode = env_block.stat().st_ino
    assert store.load() == BootSlots("A")
    store.save(store.load().try_next("B"))
    assert store.load() == BootSlots("A", "B")
    assert env_block.stat().st_ino == inode  # the same file: GRUB's save_env writes it too
    assert env_block.stat().st_size == ENV_BLOCK_SIZE
    assert b"ONSHI_KERNEL_ARGS=quiet\n" in env_block.read_bytes()


def test_grub_reads_the_block_this_writes(env_block: Path) -> None:
    GrubEnvironment(env_block).save(BootSlots("B", "A"))
    editenv = shutil.which("grub-editenv")
    assert editenv, "grub-editenv (grub-common) is installed by make deps"
    listed = subprocess.run(
        [editenv, str(env_block), "list"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert "ONSHI_SLOT=B" in listed
    assert "ONSHI_TRY=A" in listed
    # and what GRUB's own tool writes, this reads
    subprocess.run([editenv, str(env_block), "set", "ONSHI_TRY="], check=True)
    assert GrubEnvironment(env_block).load() == BootSlots("B")


@pytest.mark.parametrize(
    "content",
    [b"", b"# GRUB Environment Block\nONSHI_SLOT=A\n", b"x" * ENV_BLOCK_SIZE],
    ids=["empty", "short", "no-header"],
)
def test_a_broken_block_is_refused_and_left_alone(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bootslot.env"
    path.write_bytes(content)
    with pytest.raises(BootSlotError, match="not a GRUB environment block"):
        GrubEnvironment(path).save(BootSlots("A", "B"))
    assert path.read_bytes() == content


def test_a_block_that_would_overflow_is_refused() -> None:
    with pytest.raises(BootSlotError, match="1024-byte block"):
        render_env_block({"ONSHI_KERNEL_ARGS": "x" * 1100})


def test_the_pi_autoboot_commits_with_boot_partition_and_tries_with_the_tryboot_section(
    tmp_path: Path,
) -> None:
    (tmp_path / "autoboot.txt").write_text("[all]\ntryboot_a_b=1\nboot_partition=2\n")
    store = PiAutoboot(tmp_path)
    assert store.load() == BootSlots("A")
    store.save(store.load().try_next("B"))
    text = (tmp_path / "autoboot.txt").read_text()
    assert "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n" in text
    assert store.load() == BootSlots("A", "B")  # the marker: reboot with the tryboot flag
    store.save(store.load().mark_good("B"))
    assert (
        "[all]\ntryboot_a_b=1\nboot_partition=3\n[tryboot]\nboot_partition=2\n"
        in (tmp_path / "autoboot.txt").read_text()
    )
    assert not (tmp_path / "onshi-tryboot").exists()


def test_an_autoboot_without_a_slot_partition_is_refused(tmp_path: Path) -> None:
    (tmp_path / "autoboot.txt").write_text("[all]\nboot_partition=7\n")
    with pytest.raises(BootSlotError, match="boot_partition=2 or =3"):
        PiAutoboot(tmp_path).load()
