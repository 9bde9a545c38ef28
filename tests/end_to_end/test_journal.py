"""Still nothing personal in the journal: a whole population goes through the kiosk, logging
to a real journald, and the journal is searched for every person's data.

The kiosk runs in a program of its own (:mod:`tests.support.journal_population`, the demo's
scenario: one patient of every outcome, through pcscd, the virtual cards and the clinic server
over TLS) whose stderr is the stream of a private systemd-journald
(:mod:`tests.support.journald`), so it logs exactly as under systemd: entries with fields
through systemd-python. Everything the journal then holds, every field of every entry, is
searched for the names, kana readings, birth dates, addresses, postal codes, insurer and
insured-person numbers and symbols, and public-expense numbers of the population. And the
entries a maintainer looks for are there: ``journalctl NOTICE=K-201`` finds the patient with
the revoked certificate.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from tests.support.journald import run_under_journald

PERSONAL_FIELDS = (
    "Name",
    "NameKana",
    "Birthdate",
    "Address",
    "PostNumber",
    "InsurerNumber",
    "InsurerName",
    "InsuredCardSymbol",
    "InsuredIdentificationNumber",
)


def personal_values(insured: Path) -> set[str]:
    """Every piece of personal data in the population's national records."""
    values: set[str] = set()

    def add(value: Any) -> None:
        if isinstance(value, str) and value:
            values.update(
                v for v in (value, *re.split(r"[ 　]", value)) if len(v) > 1 and not _short(v)
            )

    for line in insured.read_text(encoding="utf-8").splitlines():
        for record in json.loads(line)["records"]:
            for field in PERSONAL_FIELDS:
                add(record.get(field))
            birthdate = record["Birthdate"]
            add(f"{birthdate[:4]}-{birthdate[4:6]}-{birthdate[6:]}")
            for expense in record["PublicExpenseInfo"]:
                add(expense["PublicExpenseNumber"])
                add(expense["BeneficiaryNumber"])
    return values


def _short(value: str) -> bool:
    """A number of fewer than 5 digits (an insured-card symbol such as 1022): it cannot be
    told from a duration in milliseconds, a count or a process id, so it is not searched for.
    Insurer numbers (6 or 8 digits), birth dates, insured-person and public-expense numbers
    are."""
    return value.isdigit() and len(value) < 5


def occurs(value: str, text: str) -> bool:
    """``value`` in ``text``; a number only as a whole number (not inside a timestamp)."""
    if value.isdigit():
        return re.search(rf"(?<!\d){value}(?!\d)", text) is not None
    return value in text


def test_a_whole_population_leaves_nothing_personal_in_the_journal(
    pcscd: str, tmp_path: Path
) -> None:
    root, out = tmp_path / "world", tmp_path / "out"
    run = run_under_journald(
        [sys.executable, "-m", "tests.support.journal_population", str(root), str(out)],
        tmp_path / "journal",
        queries=[
            ["NOTICE=K-201"],
            ["FLOW_EVENT=verification.outcome"],
            ["FLOW_EVENT=verification.outcome", "FLOW_STATE=result_ok"],
        ],
        timeout_s=400,
    )
    transcript = (out / "transcript.jsonl").read_text(encoding="utf-8").splitlines()
    assert run.returncode == 0, transcript
    visits = [json.loads(line) for line in transcript]
    assert len(visits) == 20

    values = personal_values(root / "population" / "insured.jsonl")
    assert len(values) > 100
    leaked = sorted(v for v in values if occurs(v, run.everything))
    where = [
        m.group(0) for v in leaked for m in re.finditer(rf".{{0,80}}{v}.{{0,40}}", run.everything)
    ]
    assert not leaked, f"personal data in the journal: {leaked}: {where}"
    entries = json.loads(run.everything)
    assert not [e for e in entries if "PIN" in e or "NAME" in e]

    revoked, outcomes, ok = run.found
    assert len(outcomes) == len(visits), run.everything[-3000:]
    assert {e["NOTICE"] for e in outcomes if "NOTICE" in e} >= {"K-201", "K-202", "K-211"}, [
        e["MESSAGE"] for e in outcomes
    ]
    assert [e["FLOW_STATE"] for e in revoked] == ["error"]
    (entry,) = revoked
    assert entry["_TRANSPORT"] == "journal"
    assert entry["READER"] == pcscd
    assert entry["DEVICE"] == "kiosk-demo"
    assert int(entry["OUTBOX_DEPTH"]) >= 0
    shown_ok = [v for v in visits if "result_ok" in [s["id"] for s in v["screens"]]]
    assert len(ok) == len(shown_ok)
