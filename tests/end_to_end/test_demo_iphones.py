"""``kiosk demo --headless`` shows both kinds of iPhone: one that reports the PIN verified after
Face ID (no PIN pad), one that does not (the PIN pad)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from kiosk.sim.outcomes import OUTCOMES


def test_the_demo_shows_both_kinds_of_iphone(pcscd: str, tmp_path: Path) -> None:
    expected = {o.name: o.route for o in OUTCOMES}
    assert expected["iphone"] == "ok"
    assert expected["iphone-face-id"] == "ok"
    out = tmp_path / "demo"
    run = subprocess.run(
        [
            *(sys.executable, "-m", "kiosk", "demo", "--headless"),
            *("--scenario", "iphone,iphone-face-id", "--out", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "SDL_AUDIODRIVER": "dummy"},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = [json.loads(line) for line in (out / "transcript.jsonl").read_text().splitlines()]
    by_outcome = {line["outcome"]: line for line in lines}
    assert set(by_outcome) == {"iphone", "iphone-face-id"}
    for name, line in by_outcome.items():
        assert line["shown"] == line["expected"] == expected[name]
    face_id = [s["id"] for s in by_outcome["iphone-face-id"]["screens"]]
    assert "pin_entry" not in face_id
    assert "result_ok" in face_id
    plain = [s["id"] for s in by_outcome["iphone"]["screens"]]
    assert "pin_entry" in plain
    assert "2 patients, 2 as expected" in run.stdout
