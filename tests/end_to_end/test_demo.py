"""``kiosk demo --headless``: its own server, population and kiosk, a transcript and PNGs.

This module runs before the session kiosk of the other e2e modules starts (pytest runs the
files in order): two kiosks on the one vpcd reader would both talk to the demo's cards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from kiosk.flow.notices import Notice
from kiosk.flow.screens import Screen, ScreenId
from testbed.demo import has_display
from testbed.patient import route_shown

PNG = b"\x89PNG\r\n\x1a\n"


def test_the_headless_demo_walks_each_outcome_and_writes_transcript_and_pngs(
    pcscd: str, tmp_path: Path
) -> None:
    out = tmp_path / "demo"
    outcomes = ["valid-employee", "pin-one-try-left", "revoked-certificate", "non-jpki"]
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "kiosk",
            "demo",
            "--headless",
            "--scenario",
            ",".join(outcomes),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "SDL_AUDIODRIVER": "dummy"},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = [json.loads(line) for line in (out / "transcript.jsonl").read_text().splitlines()]
    assert [line["outcome"] for line in lines] == outcomes
    for line in lines:
        assert {"profile", "expected", "shown", "seconds", "screens", "png"} <= set(line)
        assert line["shown"] == line["expected"]
        assert line["seconds"] > 0
        assert len(line["png"]) >= len([s for s in line["screens"] if s["id"] != "idle"])
        for name in line["png"]:
            assert (out / "screens" / name).read_bytes()[:8] == PNG
    assert f"transcript: {out / 'transcript.jsonl'}" in run.stdout
    assert f"screenshots: {out / 'screens'}" in run.stdout


def test_the_route_is_read_off_the_screens() -> None:
    def screens(*ids: ScreenId, notice: Notice | None = None) -> list[Screen]:
        return [
            Screen(i, notice=notice if i in (ScreenId.ERROR, ScreenId.NEEDS_STAFF) else None)
            for i in ids
        ]

    assert route_shown(screens(ScreenId.READING, ScreenId.PIN_ENTRY, ScreenId.RESULT_OK)) == "ok"
    visual = screens(ScreenId.CHOOSE_CHECK, ScreenId.VISUAL_WAIT, ScreenId.RESULT_OK)
    assert route_shown(visual) == "staff"
    assert route_shown(screens(ScreenId.NEEDS_STAFF, notice=Notice.NOT_FOUND)) == "staff"
    assert route_shown(screens(ScreenId.ERROR, notice=Notice.REVOKED)) == "error"
    assert route_shown(screens(ScreenId.SERVER_UNREACHABLE)) == "staff"
    assert route_shown(screens(ScreenId.READING, ScreenId.REMOVED_EARLY)) == "none"


def test_a_display_is_found_only_where_one_can_open() -> None:
    assert not has_display({"SDL_VIDEODRIVER": "dummy", "DISPLAY": ":0"})
    assert has_display({"DISPLAY": ":0"})
    assert has_display({"WAYLAND_DISPLAY": "wayland-0"})
