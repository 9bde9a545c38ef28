"""The dashboard's pages: the list, a verification's detail, the queue, kiosks, the log."""

from __future__ import annotations

import secrets

from tests.support.clinic import csrf_of


def test_the_detail_is_laid_out_like_receipt_software_and_logged(clinic, staff):
    result = clinic.kiosk().check(clinic.card("valid-elderly-30-limit"), "pin")
    record = clinic.context.service.get(result.verification_id).records[0]
    page = staff.get(f"/verifications/{result.verification_id}")
    assert page.status_code == 200
    html = page.text
    for label in (
        "保険者番号",
        "記号",
        "番号",
        "枝番",
        "負担割合",
        "高齢受給者証",
        "限度額適用認定証",
    ):
        assert label in html
    assert record["NameKana"] in html
    digits = "".join(f'<span class="box">{c}</span>' for c in record["InsurerNumber"])
    assert digits in html, "the insurer number is shown digit by digit"
    assert "令和" in html or "平成" in html or "昭和" in html, "dates in the Japanese era"
    assert "3割" in html
    entries = clinic.context.access_log.for_verification(result.verification_id)
    assert [(e["username"], e["action"]) for e in entries] == [(clinic.admin, "view")]


def test_the_list_shows_no_patient_data(clinic, staff):
    result = clinic.kiosk().check(clinic.card("valid-family"), "pin")
    record = clinic.context.service.get(result.verification_id).records[0]
    page = staff.get("/")
    assert result.verification_id in page.text
    assert record["Name"] not in page.text
    assert record["InsurerNumber"] not in page.text


def test_the_staff_queue_lists_visual_checks_and_errors(clinic, staff):
    pending = clinic.kiosk().check(clinic.card("pin-locked"), "visual")
    failed = clinic.kiosk().check(clinic.card("not-registered"), "pin")
    page = staff.get("/queue").text
    assert pending.verification_id in page
    assert failed.verification_id in page
    assert (
        staff.post(
            f"/verifications/{failed.verification_id}/handled", data={"csrf": csrf_of(staff)}
        ).status_code
        == 303
    )
    assert failed.verification_id not in staff.get("/queue").text
    assert clinic.context.service.get(failed.verification_id).handled_by == clinic.admin


def test_only_administrators_see_the_access_log(clinic, staff):
    result = clinic.kiosk().check(clinic.card("valid-national"), "pin")
    staff.get(f"/verifications/{result.verification_id}")
    page = staff.get("/access-log")
    assert page.status_code == 200
    assert result.verification_id[:8] in page.text
    assert 'id="chain"' in page.text
    assert "正常" in page.text
    password = secrets.token_urlsafe(12)
    name = f"nurse-{secrets.token_hex(3)}"
    clinic.context.staff.add(name, password)
    with clinic.staff_client() as nurse:
        clinic.login(nurse, name, password)
        assert nurse.get("/access-log").status_code == 403
        assert nurse.get(f"/verifications/{result.verification_id}").status_code == 200
    users = [
        e["username"] for e in clinic.context.access_log.for_verification(result.verification_id)
    ]
    assert users == [clinic.admin, name]


def test_the_kiosks_page_shows_health(clinic, staff):
    kiosk = clinic.kiosk("kiosk-health")
    kiosk.client.heartbeat("degraded", {"reader": "missing", "outbox": 3})
    page = staff.get("/kiosks").text
    assert "kiosk-health" in page
    assert "degraded" in page
    assert "reader=missing" in page
