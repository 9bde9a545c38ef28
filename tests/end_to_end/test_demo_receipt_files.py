"""``kiosk demo --headless --out OUT``: a result file in ``OUT/oqs/`` for every patient whose
check completed, each read back and compared field by field with the national record it
came from (``OUT/population/insured.jsonl``).

Like ``test_demo``, this module runs before the session kiosk of the later e2e modules starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from kiosk.sim.outcomes import OUTCOMES
from tests.support.oqs_files import compare_with_record, expected_fields, parse_file


def _entry_for(
    parsed_results: list[dict[str, Any]], entries: list[dict[str, Any]]
) -> dict[str, Any]:
    """The national entry whose records the file holds (insurer and insured numbers)."""
    keys = [(r.get("InsurerNumber"), r.get("InsuredIdentificationNumber")) for r in parsed_results]
    matching = [
        e
        for e in entries
        if [(r["InsurerNumber"], r["InsuredIdentificationNumber"]) for r in e["records"]] == keys
        and [expected_fields(r) for r in e["records"]] == parsed_results
    ]
    assert len(matching) == 1, f"one national entry holds {keys}"
    return matching[0]


def test_the_demo_writes_one_result_file_per_completed_check(pcscd: str, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "kiosk",
            "demo",
            "--headless",
            "--scenario",
            "all",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SDL_AUDIODRIVER": "dummy"},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"result files for receipt software: {out / 'oqs'}" in run.stdout
    lines = [json.loads(line) for line in (out / "transcript.jsonl").read_text().splitlines()]
    by_name = {o.name: o for o in OUTCOMES}
    completed = [by_name[line["outcome"]].expected_validity_code for line in lines]
    expected_codes = sorted(c for c in completed if c is not None)
    entries = [
        json.loads(line)
        for line in (out / "population" / "insured.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    files = sorted((out / "oqs").glob("OQSsiquc01res_face_*.xml"))
    assert not list((out / "oqs").glob(".*.part"))
    codes = []
    for path in files:
        parsed = parse_file(path.read_bytes())
        assert parsed.codec == "cp932"  # the default
        validity = int(parsed.body["QualificationValidity"])
        codes.append(validity)
        if validity == 4:
            compare_with_record(parsed, 4, [])
            continue
        entry = _entry_for(parsed.results, entries)
        compare_with_record(parsed, entry["validity_code"], entry["records"])
    assert sorted(codes) == expected_codes
    assert len({p.name.split("_")[2] for p in files}) == len(files)  # one per check
