"""The outage path end to end, against a real server on loopback (TLS, device-signed kiosk
requests, the dashboard over HTTPS): the national system goes down, a kiosk's check cannot be
answered, staff record a manual confirmation on the dashboard, the system comes back, one
click re-checks the visit, and its result reaches the receipt software's folder."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from clinic.national.simulated import SimulatedNationalSystem
from kiosk.sim.population import Population
from tests.support.clinic import Clinic, csrf_of, start_clinic, stop_clinic
from tests.support.oqs_files import compare_with_record, parse_file

CODE = "2713456789"


@pytest.fixture
def clinic(population: Population, tmp_path: Path) -> Iterator[Clinic]:
    folder = tmp_path / "oqs"
    folder.mkdir()
    running = start_clinic(
        "sqlite",
        population,
        tmp_path,
        None,
        receipt_folder=str(folder),
        medical_institution_code=CODE,
    )
    try:
        yield running
    finally:
        stop_clinic(running)


@pytest.fixture
def staff(clinic: Clinic) -> Iterator[httpx.Client]:
    with clinic.staff_client() as client:
        assert clinic.login(client).status_code == 303
        yield client


def test_outage_manual_confirmation_then_recheck(clinic: Clinic, staff: httpx.Client) -> None:
    connector = clinic.context.connector
    assert isinstance(connector, SimulatedNationalSystem)
    folder = clinic.config.receipt_settings.folder
    assert folder is not None
    kiosk = clinic.kiosk("kiosk-outage")

    connector.plan.down = True  # the national system is down
    result = kiosk.check(clinic.card("valid-employee"), "pin")
    assert result.reason_code == "national.unavailable"
    assert result.patient_message == "see_staff.system_down"
    vid = result.verification_id
    detail = staff.get(f"/verifications/{vid}").text
    assert 'id="manual-form"' in detail
    assert "10割負担にしないでください" in detail  # what staff do

    form = {
        "csrf": csrf_of(staff),
        "method": "notice_with_card",
        "name": "試験 花子",
        "sex": "2",
        "birthdate": "1980-04-01",
        "address": "大阪府大阪市北区1-1",
        "insurer": "",
    }
    refused = staff.post(f"/verifications/{vid}/manual", data={**form, "birthdate": "S55.4.1"})
    assert refused.status_code == 400
    assert "YYYY-MM-DD" in refused.text
    assert staff.post(f"/verifications/{vid}/manual", data=form).status_code == 303
    detail = staff.get(f"/verifications/{vid}").text
    assert 'id="manual-recorded"' in detail
    assert "資格情報のお知らせ" in detail
    assert 'data-state="waiting"' in detail
    assert 'data-field="manual-insurer">なし' in detail
    actions = [e["action"] for e in clinic.context.access_log.for_verification(vid)]
    assert "manual.record" in actions
    assert "view" in actions  # the manual confirmation is personal data: its views are logged
    with clinic.context.db.transaction() as tx:
        stored = tx.one(
            "SELECT details FROM manual_confirmations WHERE verification_id = ?", (vid,)
        )
    assert stored is not None
    assert "試験" not in stored["details"], "what staff wrote down is sealed at rest"
    day = clinic.context.service.get(vid).day  # type: ignore[union-attr]
    listing = staff.get(f"/?day={day}").text
    assert 'id="recheck"' in listing
    assert 'data-recheck="waiting"' in listing
    rows = list(csv.DictReader(io.StringIO(staff.get(f"/export/{day}.csv").text.lstrip("\ufeff"))))
    (row,) = [r for r in rows if r["verification_id"] == vid]
    assert row["manual_method"] == "notice_with_card"
    assert row["manual_name"] == "試験 花子"
    assert row["manual_recheck"] == "waiting"

    # still down: a re-check changes nothing and loses nothing
    staff.post("/recheck", data={"csrf": csrf_of(staff), "next": "/"})
    assert clinic.context.service.get(vid).reason_code == "national.unavailable"  # type: ignore[union-attr]
    assert not list(folder.glob("OQSsiquc01res_*.xml"))

    connector.plan.down = False  # the system is back
    answer = staff.post("/recheck", data={"csrf": csrf_of(staff), "next": f"/?day={day}"})
    assert answer.status_code == 303
    v = clinic.context.service.get(vid)
    assert v is not None
    assert v.reason_code == "eligible"
    assert v.validity_code == 1
    assert v.records
    detail = staff.get(f"/verifications/{vid}").text
    assert 'data-state="done"' in detail
    assert 'id="recheck"' not in staff.get(f"/?day={day}").text

    files: list[Path] = []
    deadline = time.monotonic() + 15
    while not files and time.monotonic() < deadline:
        time.sleep(0.05)
        files = list(folder.glob(f"OQSsiquc01res_face_{vid}_*.xml"))
    assert len(files) == 1, "the re-checked visit's result file"
    parsed = parse_file(files[0].read_bytes())
    assert parsed.header["MedicalInstitutionCode"] == CODE
    compare_with_record(parsed, 1, v.records)
