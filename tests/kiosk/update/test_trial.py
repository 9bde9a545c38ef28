"""The try of a slot: the verdict, the wait, the history; the backend RAUC calls; the status."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from contract.self_check import failed, ok, warning
from kiosk.update import boot_slots, cli, trial
from kiosk.update.boot_slots import BootSlots, GrubEnvironment
from kiosk.update.release import read_release, render_release
from kiosk.update.slot_status import describe
from tests.image.conftest import load_builder


def test_a_slot_is_committed_only_when_ready_and_nothing_in_it_failed() -> None:
    assert trial.decide(False, []) == (False, "the kiosk did not become READY")
    assert trial.decide(True, [ok("display", "1080x1920"), warning("voice", "off", "")])[0]
    commit, why = trial.decide(True, [failed("pc/sc reader", "none found", "plug it in")])
    assert not commit
    assert why == "kiosk doctor: pc/sc reader: none found"


def test_the_clock_alone_never_rolls_an_update_back() -> None:
    assert trial.decide(True, [failed("clock", "not synchronised", "check NTP")])[0]


def test_the_wait_gives_up_at_its_deadline() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    assert not trial.wait_until(lambda: False, 10, poll_s=3, clock=lambda: now[0], sleep=sleep)
    assert now[0] >= 10
    calls = iter([False, False, True])
    assert trial.wait_until(lambda: next(calls), 100, poll_s=1, clock=lambda: 0.0, sleep=sleep)


def test_the_history_survives_a_line_cut_by_a_power_loss(tmp_path: Path) -> None:
    history = tmp_path / "update" / "history.jsonl"
    first = trial.Outcome("B", "0.2.0 (build 2)", "rolled_back", "not READY", "t", 300.0)
    trial.record(first, history)
    with history.open("a") as f:
        f.write('{"slot": "A", "rel')  # the power went here
    assert trial.last_outcome(history) == first
    assert trial.last_outcome(tmp_path / "none.jsonl") is None


def test_the_booted_slot_comes_from_the_kernel_command_line(tmp_path: Path) -> None:
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("root=PARTUUID=6f6e7368-03 rauc.slot=B ro quiet\n")
    assert trial.booted_slot(cmdline) == "B"
    cmdline.write_text("root=/dev/vda ro\n")
    assert trial.booted_slot(cmdline) == "A"


@pytest.fixture
def grub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "bootslot.env"
    path.write_bytes(load_builder().grub_env_block({"ONSHI_SLOT": "A", "ONSHI_TRY": ""}))
    monkeypatch.setattr(boot_slots, "GRUB_ENV", path)
    monkeypatch.setattr(boot_slots, "PI_AUTOBOOT", tmp_path / "no-pi")
    return path


def backend(capsys: pytest.CaptureFixture[str], *words: str) -> tuple[int, str]:
    action, *rest = words
    args = argparse.Namespace(
        action=action, slot=rest[0] if rest else None, state=rest[1] if len(rest) > 1 else None
    )
    code = cli.run_backend(args)
    return code, capsys.readouterr().out.strip()


def test_rauc_installs_then_the_boot_tries_then_the_trial_commits(
    grub_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What RAUC asks of its custom backend during an install and a try, in that order."""
    assert backend(capsys, "get-primary") == (0, "A")
    assert backend(capsys, "set-state", "B", "bad") == (0, "")  # before writing slot B
    assert backend(capsys, "set-primary", "B") == (0, "")  # after writing it
    assert GrubEnvironment(grub_env).load() == BootSlots("A", "B")
    assert backend(capsys, "get-primary") == (0, "B")
    # the boot loader clears the try before it boots B (here: as GRUB's save_env would)
    GrubEnvironment(grub_env).save(BootSlots("A"))
    assert backend(capsys, "get-state", "B") == (0, "bad")
    assert backend(capsys, "set-state", "B", "good") == (0, "")  # rauc status mark-good booted
    assert GrubEnvironment(grub_env).load() == BootSlots("B")


def test_the_backend_refuses_to_mark_the_committed_slot_bad(
    grub_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.run_backend(argparse.Namespace(action="set-state", slot="A", state="bad"))
    assert code == 1
    assert "committed slot" in capsys.readouterr().err
    assert GrubEnvironment(grub_env).load() == BootSlots("A")


def test_the_status_names_each_slots_release_and_the_last_try(tmp_path: Path) -> None:
    env = tmp_path / "bootslot.env"
    env.write_bytes(load_builder().grub_env_block({"ONSHI_SLOT": "A", "ONSHI_TRY": ""}))
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("rauc.slot=A\n")
    release = tmp_path / "onshi-release"
    release.write_text(render_release("0.1.0", 1000))
    assert str(read_release(release)) == "0.1.0 (build 1000)"
    status_file = tmp_path / "central.raucs"
    status_file.write_text(
        "[slot.rootfs.1]\nbundle.compatible=onshi-kiosk-amd64\nbundle.version=0.2.0\n"
        "bundle.build=2000\nstatus=ok\n"
    )
    history = tmp_path / "history.jsonl"
    trial.record(
        trial.Outcome("B", "0.2.0 (build 2000)", "rolled_back", "not READY", "t", 300.0), history
    )
    status = describe(
        GrubEnvironment(env),
        cmdline=cmdline,
        release_file=release,
        status_file=status_file,
        history=history,
    )
    assert status["slots"] == {
        "A": {"release": "0.1.0 (build 1000)", "state": "good"},
        "B": {"release": "0.2.0 (build 2000)", "state": "bad"},
    }
    assert status["summary"] == (
        "A (booted, committed): 0.1.0 (build 1000); B (other): 0.2.0 (build 2000); "
        "last try: slot B 0.2.0 (build 2000) rolled_back (not READY)"
    )


def test_kiosk_doctor_shows_the_slots_and_warns_after_a_roll_back() -> None:
    from kiosk.doctor.updates import check_updates
    from kiosk.errors import BootSlotError

    def no_slots() -> dict[str, object]:
        raise BootSlotError("no A/B boot here")

    assert check_updates(no_slots).state.value == "ok"
    base = {"booted": "A", "committed": "A", "summary": "A (booted, committed): 0.1.0"}
    assert check_updates(lambda: {**base, "last_try": None}).state.value == "ok"
    rolled = {"slot": "B", "outcome": "rolled_back"}
    finding = check_updates(lambda: {**base, "last_try": rolled})
    assert finding.state.value == "warning"
    assert "rolled back" in finding.advice
    trying = check_updates(lambda: {**base, "booted": "B", "last_try": None})
    assert trying.state.value == "warning"


def test_a_slot_keeps_its_release_once_the_other_is_booted_and_forgets_it_while_written(
    tmp_path: Path,
) -> None:
    from kiosk.update.slot_status import note_release

    env = tmp_path / "bootslot.env"
    env.write_bytes(load_builder().grub_env_block({"ONSHI_SLOT": "B", "ONSHI_TRY": ""}))
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("rauc.slot=B\n")
    release = tmp_path / "onshi-release"
    release.write_text(render_release("0.2.0", 2000))
    notes = tmp_path / "slots.json"
    note_release("A", "0.1.0 (build 1000)", notes)  # noted when A was booted

    def status() -> dict[str, object]:
        return describe(
            GrubEnvironment(env),
            cmdline=cmdline,
            release_file=release,
            status_file=tmp_path / "none.raucs",
            history=tmp_path / "none.jsonl",
            notes=notes,
        )["slots"]  # type: ignore[return-value]

    assert status()["A"] == {"release": "0.1.0 (build 1000)", "state": "bad"}  # type: ignore[index]
    note_release("A", None, notes)  # a bundle is being written into A
    assert status()["A"] == {"release": None, "state": "bad"}  # type: ignore[index]
