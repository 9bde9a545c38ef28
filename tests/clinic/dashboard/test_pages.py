"""The dashboard's pages: the list, a verification's detail, the queue, kiosks, the log."""

from __future__ import annotations

import secrets

import pytest

from contract.heartbeat import KioskHealth
from kiosk.errors import ServerRejected
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
    row = kiosk_row(page, "kiosk-health")
    assert "degraded" in row
    assert "reader.missing" in row
    assert 'data-flagged="yes"' in row


def kiosk_row(page: str, device_id: str) -> str:
    start = page.index(f'<tr id="kiosk-{device_id}"')
    return page[start : page.index("</tr>", start)]


def badge_devices(page: str) -> list[str]:
    marker = 'data-devices="'
    if 'id="kiosk-badge"' not in page:
        return []
    start = page.index(marker, page.index('id="kiosk-badge"')) + len(marker)
    return page[start : page.index('"', start)].split()


def well(**changes: object) -> dict[str, object]:
    detail = KioskHealth(
        interval_s=1.0,
        reader="present",
        backlog_records=4,
        backlog_bytes=4000,
        oldest_age_s=300.0,
        queue_level="ok",
        clock_synced=True,
        temperature_c=51.2,
        uptime_s=7200.0,
        version="9.8.7",
        notice="K-303",
        notice_at=1_700_000_000.0,
    ).to_detail()
    detail.update(changes)  # type: ignore[arg-type]
    return detail


def test_the_kiosks_page_shows_each_heartbeat_field(clinic, staff):
    kiosk = clinic.kiosk("kiosk-fields")
    kiosk.client.heartbeat("ok", well())
    row = kiosk_row(staff.get("/kiosks").text, "kiosk-fields")
    assert 'data-flagged="no"' in row
    assert '<td class="reader">present</td>' in row
    assert "未送信 4 (最古 5 min)" in row
    assert "最終送信" in row
    assert "同期済み" in row
    assert "51.2 °C" in row
    assert "9.8.7" in row
    assert '<td class="uptime">2 h</td>' in row
    assert "K-303 (2023-11-15 07:13:20)" in row, "the notice and when, in the clinic's zone"
    assert "kiosk-fields" not in badge_devices(staff.get("/").text)
    kiosk.client.heartbeat("ok", well(temperature_c=None))
    row = kiosk_row(staff.get("/kiosks").text, "kiosk-fields")
    assert '<td class="temperature"></td>' in row, "no sensor, no temperature"


def test_the_kiosks_page_shows_the_update_slots_and_a_roll_back(clinic, staff):
    kiosk = clinic.kiosk("kiosk-updated")
    slots = "A 0.1.0 (build 17) committed, booted · B 0.1.1 (build 18)"
    rolled = (
        "B 0.1.1 (build 18) rolled_back 2026-12-01T10:00:00+00:00: the kiosk did not become READY"
    )
    kiosk.client.heartbeat("ok", well(slots=slots, last_update=rolled))
    row = kiosk_row(staff.get("/kiosks").text, "kiosk-updated")
    assert f"更新スロット: {slots}" in row
    assert f'<span class="last-update bad">最後の更新: {rolled}</span>' in row
    assert 'data-flagged="no"' in row, "the kiosk works: a roll back is shown, not a fault"
    committed = rolled.replace("rolled_back", "committed")
    kiosk.client.heartbeat("ok", well(slots=slots, last_update=committed))
    row = kiosk_row(staff.get("/kiosks").text, "kiosk-updated")
    assert f'<span class="last-update">最後の更新: {committed}</span>' in row


def test_a_fault_flags_the_kiosk_on_every_page_until_it_is_well(clinic, staff):
    kiosk = clinic.kiosk("kiosk-faulty")
    for fault in (
        {"reader": "absent"},
        {"clock_synced": False},
        {"alarms": "outbox.warn"},
    ):
        kiosk.client.heartbeat("ok", well(**fault))
        for path in ("/", "/queue", "/kiosks", "/access-log"):
            page = staff.get(path).text
            assert "kiosk-faulty" in badge_devices(page), (fault, path)
            assert 'href="/kiosks"' in page[page.index('id="kiosk-badge"') - 200 :]
    kiosk.client.heartbeat("ok", well())
    assert "kiosk-faulty" not in badge_devices(staff.get("/").text)


def test_a_kiosk_silent_for_three_intervals_is_flagged_until_it_beats_again(clinic, staff, clock):
    kiosk = clinic.kiosk("kiosk-quiet")
    kiosk.client.heartbeat("ok", well(interval_s=10.0))
    assert "kiosk-quiet" not in badge_devices(staff.get("/").text)
    clock.offset = 25.0  # two and a half intervals
    assert "kiosk-quiet" not in badge_devices(staff.get("/").text)
    clock.offset = 31.0
    page = staff.get("/kiosks").text
    assert "kiosk-quiet" in badge_devices(page)
    assert "応答なし" in kiosk_row(page, "kiosk-quiet")
    kiosk.client.heartbeat("ok", well(interval_s=10.0))
    assert "kiosk-quiet" not in badge_devices(staff.get("/").text)


def test_a_kiosk_without_heartbeats_or_revoked_is_not_flagged(clinic, staff):
    clinic.kiosk("kiosk-mute").client.challenge()
    revoked = clinic.kiosk("kiosk-gone")
    revoked.client.heartbeat("error", well(reader="absent"))
    assert "kiosk-gone" in badge_devices(staff.get("/").text)
    clinic.context.devices.revoke("kiosk-gone")
    flagged = badge_devices(staff.get("/").text)
    assert "kiosk-mute" not in flagged
    assert "kiosk-gone" not in flagged


def test_a_heartbeat_with_oversized_detail_is_refused(clinic):
    kiosk = clinic.kiosk("kiosk-chatty")
    with pytest.raises(ServerRejected) as refused:
        kiosk.client.heartbeat("ok", {"reader": "x" * 1000})
    assert refused.value.status == 422
