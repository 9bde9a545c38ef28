"""Smaller finding: the CSV export left ``" =1+1"`` and ``"\\n=2+2"`` as formulas.

A cell whose first characters are white space (a space, a line break, a tab, the ideographic
space) followed by ``=``, ``+``, ``-`` or ``@`` - or that starts with a tab or carriage return -
runs as a formula in spreadsheet software. Such cells are now prefixed with ``'``. The records
come from the national system through a real server on loopback (SQLite), and the export is
read back with ``csv``.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from clinic.dashboard.export import _csv_safe
from clinic.national.simulated import load_insured, read_insured_jsonl
from kiosk.sim.population import Population
from tests.support.clinic import Clinic, start_clinic, stop_clinic

#: field -> a value the national side could hold, and that a spreadsheet would run
HOSTILE = {
    "Name": " =1+1",
    "Address": "\n=2+2",
    "NameKana": "\t=3+3",
    "InsurerName": "\r\n@SUM(1)",
    "InsuredCardSymbol": "\u3000=4+4",
    "InsuredIdentificationNumber": "  \n -5+5",
    "PostNumber": "\uff1d6+6",
}


@pytest.fixture(scope="module")
def clinic(population: Population, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clinic]:
    running = start_clinic("sqlite", population, tmp_path_factory.mktemp("csv"), None)
    try:
        yield running
    finally:
        stop_clinic(running)


def test_cells_that_would_run_as_formulas_are_neutralised(clinic):
    card = clinic.population.card("valid-national")
    (entry,) = [
        e for e in read_insured_jsonl(clinic.population.insured_path) if e.card_id == card.id
    ]
    hostile = replace(entry, records=tuple({**r, **HOSTILE} for r in entry.records))
    load_insured(clinic.context.db, iter([hostile]), now=time.time())
    result = clinic.kiosk().check(card.load_profile(), "pin")
    assert result.eligible
    with clinic.staff_client() as staff:
        assert clinic.login(staff).status_code == 303
        day = clinic.context.service.get(result.verification_id).day
        exported = staff.get(f"/export/{day}.csv")
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
    (row,) = [r for r in rows if r["verification_id"] == result.verification_id]
    for field, value in HOSTILE.items():
        print(f"\n{field}: {value!r} -> {row[field]!r}")
        assert row[field] == "'" + value, field


@pytest.mark.parametrize(
    "value",
    [" =1+1", "\n=2+2", "\r=3", "\t4", "  +5", " -6", "\n\n@7", "\u3000=8", "\uff1d9", "\uff0b10"],
)
def test_every_formula_lead_in_is_prefixed(value):
    assert _csv_safe(value) == "'" + value


@pytest.mark.parametrize("value", ["", "030", "見本　次郎", "06139999", "東京都 1-2-3", " 12"])
def test_ordinary_values_are_left_alone(value):
    assert _csv_safe(value) == value
