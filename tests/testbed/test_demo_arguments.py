"""``kiosk demo``'s arguments and terminal: a wrong scenario or folder is refused before
anything starts, with what to do instead; the window demo narrates each visit; ``make demo``
starts only the services the demo uses."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import pytest

from kiosk.flow.notices import Notice
from kiosk.flow.screens import Screen, ScreenId, UiAction, UiInput
from kiosk.sim.outcomes import OUTCOMES
from testbed.cli import OUT_MARK, add_demo, prepare_out, scenario_outcomes
from testbed.demo_window import Narrator, demo_voice
from testbed.screen_log import ScreenLog

ROOT = Path(__file__).resolve().parents[2]


def demo(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kiosk")
    add_demo(parser.add_subparsers())
    return parser.parse_args(["demo", *argv])


def run(argv: list[str]) -> int:
    args = demo(argv)
    code: int = args.handler(args)
    return code


def test_an_unknown_scenario_lists_the_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--headless", "--scenario", "valid-employee,no-such-patient"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "unknown 'no-such-patient'" in err
    listed = {line.strip() for line in err.splitlines()[1:]}
    assert listed == {"all", *(outcome.name for outcome in OUTCOMES)}


def test_known_scenarios_are_taken_in_order() -> None:
    assert scenario_outcomes("all") is None
    assert scenario_outcomes(" non-jpki , valid-employee") == ["non-jpki", "valid-employee"]
    with pytest.raises(Exception, match="no outcome"):
        scenario_outcomes(",")


def test_a_folder_the_demo_did_not_write_is_refused_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    assert run(["--headless", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err
    assert "Traceback" not in err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_a_file_as_out_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x", encoding="utf-8")
    assert run(["--headless", "--out", str(tmp_path / "file")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_an_earlier_demo_output_is_emptied_and_a_new_folder_made(tmp_path: Path) -> None:
    fresh = tmp_path / "new" / "out"
    prepare_out(fresh)
    assert [p.name for p in fresh.iterdir()] == [OUT_MARK]
    (fresh / "screens").mkdir()
    (fresh / "screens" / "0001-idle.png").write_bytes(b"png")
    (fresh / "transcript.jsonl").write_text("{}\n", encoding="utf-8")
    prepare_out(fresh)
    assert [p.name for p in fresh.iterdir()] == [OUT_MARK]


def test_the_window_narrates_outcomes_and_staff_calls() -> None:
    said: list[str] = []
    inner = ScreenLog()
    narrator = Narrator(inner, said.append)
    sent: list[UiInput] = []
    narrator.start(sent.append)
    inner.touch(UiInput(UiAction.CALL_STAFF))
    assert sent == [UiInput(UiAction.CALL_STAFF)]
    for sid in (ScreenId.IDLE, ScreenId.READING, ScreenId.PIN_ENTRY, ScreenId.RESULT_OK):
        narrator.show(Screen(sid))
    narrator.show(Screen(ScreenId.TAKE_CARD))
    narrator.show(Screen(ScreenId.IDLE))
    narrator.show(Screen(ScreenId.READING))
    narrator.show(Screen(ScreenId.ERROR, notice=Notice.REVOKED))
    assert said == [
        "call-staff button touched on the screen",
        "outcome: ok (result_ok)",
        f"outcome: error (error {Notice.REVOKED.code})",
    ]
    assert [s.screen.id for s in inner.shown][-1] is ScreenId.ERROR


def test_make_demo_starts_pcscd_and_not_postgresql() -> None:
    def plan(target: str) -> str:
        return subprocess.run(
            ["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout

    assert "pcscd.sh" in plan("demo")
    assert "postgres" not in plan("demo")
    assert {"pcscd.sh", "postgres.sh"} <= {w.rsplit("/", 1)[-1] for w in plan("services").split()}


def test_the_window_demo_runs_silent_without_a_sound_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    said: list[str] = []
    assert demo_voice(said.append) is None
    assert said == ["no sound output here: the kiosk runs silent"]
