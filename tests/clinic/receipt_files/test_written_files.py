"""Result files written by a running server: one per completed check (PIN, or a visual check
staff confirmed), read back and compared with the national record it came from."""

from __future__ import annotations

from pathlib import Path

from kiosk.sim.population import Population
from tests.clinic.receipt_files.conftest import CODE, folder_of, wait_for
from tests.support.clinic import Clinic
from tests.support.oqs_files import compare_with_record, insured_by_certificate, parse_file


def _files(folder: Path) -> dict[str, Path]:
    """Result files by verification id (``OQSsiquc01res_face_<id>_<time>.xml``)."""
    return {p.name.split("_")[2]: p for p in folder.glob("OQSsiquc01res_*.xml")}


def test_every_completed_check_of_the_population_is_one_file_equal_to_its_record(
    receipt_clinic: Clinic, population: Population
) -> None:
    folder = folder_of(receipt_clinic)
    kiosk = receipt_clinic.kiosk("kiosk-files")
    service = receipt_clinic.context.service
    completed = {}
    not_completed = set()
    for card in population.cards:
        profile = card.load_profile()
        if profile.user_auth_certificate is None:
            continue  # no JPKI certificate: no check can be made
        result = kiosk.check(profile, "pin")
        v = service.get(result.verification_id)
        assert v is not None
        if v.validity_code is not None:
            completed[v.id] = v
        else:
            not_completed.add(v.id)
    assert {v.validity_code for v in completed.values()} >= {1, 2, 3, 4, 5}
    wait_for(lambda: set(_files(folder)) >= set(completed), "every completed check's file")
    files = _files(folder)
    assert set(files) == set(completed)  # none for checks the national system did not answer
    assert not set(files) & not_completed
    national = insured_by_certificate(population.insured_path)
    for verification_id, path in files.items():
        v = completed[verification_id]
        parsed = parse_file(path.read_bytes())
        assert parsed.codec == receipt_clinic.config.receipt_settings.encoding
        assert parsed.header["MedicalInstitutionCode"] == CODE
        assert parsed.header["ReferenceClassification"] == "1"
        entry = national.get((str(v.cert_issuer), str(v.cert_serial)))
        if entry is None:  # not registered for insurance use: no record
            compare_with_record(parsed, 4, [])
            continue
        compare_with_record(parsed, entry["validity_code"], entry["records"])
    assert not list(folder.glob(".*.part")), "no temporary file left behind"


def test_a_visual_check_gets_its_file_once_staff_confirm_it(receipt_clinic: Clinic) -> None:
    folder = folder_of(receipt_clinic)
    kiosk = receipt_clinic.kiosk("kiosk-visual")
    service = receipt_clinic.context.service
    waiting = kiosk.check(receipt_clinic.card("valid-employee"), "visual")
    assert waiting.awaiting_staff
    rejected = kiosk.check(receipt_clinic.card("valid-employee"), "visual")
    service.decide(rejected.verification_id, "rejected", by="admin")
    queue = receipt_clinic.context.extras["receipt_files"]
    queue.drain()
    assert waiting.verification_id not in _files(folder)  # no record before staff decided
    confirmed = service.decide(waiting.verification_id, "confirmed", by="admin")
    assert confirmed.validity_code == 1
    wait_for(lambda: waiting.verification_id in _files(folder), "the visual check's file")
    assert rejected.verification_id not in _files(folder)
    parsed = parse_file(_files(folder)[waiting.verification_id].read_bytes())
    compare_with_record(parsed, 1, confirmed.records or [])
    # the same completion handed on again is not a second file
    assert queue.submit(confirmed) is False
