"""Finding 3: a kiosk could approve its own visual checks with its staff button.

The button's confirmation is signed with the device key; software holding a stolen key could
confirm every visual check it starts (certificates are public) and have the server fetch the
full record. These tests run real servers on loopback and check the limits: a per-kiosk hourly
rate with an alarm (dashboard banner and log line), the dashboard's list of button
confirmations with revocation inside a window (recorded in the access log), and the clinic
setting that leaves confirmation to the dashboard only.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

import httpx
import pytest

from kiosk.errors import ServerRejected
from kiosk.sim.population import Population
from tests.support.clinic import (
    Clinic,
    Kiosk,
    csrf_of,
    start_clinic,
    stop_clinic,
)

RATE = 2
WINDOW_S = 600.0
#: kiosks' buttons may confirm RATE visual checks an hour
CLINIC_SETTINGS = {"button_confirms_per_hour": RATE, "button_revoke_window_s": WINDOW_S}


@pytest.fixture
def clock(clinic: Clinic) -> Iterator[None]:
    yield
    clinic.clock.offset = 0.0


def visual_check(clinic: Clinic, kiosk: Kiosk, outcome: str = "valid-national") -> str:
    """A visual check as a kiosk starts it: only the card's (public) certificate is needed."""
    result = kiosk.check(clinic.card(outcome), "visual")
    assert result.state == "awaiting_staff"
    return result.verification_id


@contextlib.contextmanager
def signed_in(clinic: Clinic) -> Iterator[httpx.Client]:
    with clinic.staff_client() as client:
        assert clinic.login(client).status_code == 303
        yield client


def test_a_kiosk_button_over_its_hourly_rate_is_refused_and_raises_the_alarm(clinic, caplog):
    kiosk = clinic.kiosk("kiosk-thief")
    accepted, refused = [], []
    with caplog.at_level(logging.WARNING, logger="clinic.button"):
        for _ in range(RATE + 2):
            vid = visual_check(clinic, kiosk)
            try:
                result = kiosk.client.confirm(vid, "confirmed")
            except ServerRejected as exc:
                refused.append((vid, exc))
            else:
                accepted.append(result)
    print(
        f"\nbutton confirmations from one kiosk: {len(accepted)} accepted, {len(refused)} "
        f"refused (limit {RATE}/hour)"
    )
    assert [r.reason_code for r in accepted] == ["eligible"] * RATE
    assert len(refused) == 2
    for vid, exc in refused:
        assert exc.status == 403
        assert "staff were called" in str(exc)
        kept = clinic.context.service.get(vid)
        assert kept is not None
        assert kept.state == "awaiting_staff", "the refused check stays with staff"
        assert kept.records is None, "nothing was fetched for it"
    # the alarm: one line in the log per refusal, one banner on the dashboard
    alarms = [r for r in caplog.records if "ALARM" in r.getMessage()]
    assert len(alarms) == 2
    assert all("kiosk-thief" in r.getMessage() for r in alarms)
    with signed_in(clinic) as staff:
        page = staff.get("/").text
        assert 'id="alarms"' in page
        assert 'data-device="kiosk-thief"' in page
        # staff still confirm the refused check on the dashboard
        vid = refused[0][0]
        answer = staff.post(
            f"/verifications/{vid}/decide",
            data={"csrf": csrf_of(staff), "decision": "confirmed", "next": "/queue"},
        )
        assert answer.status_code == 303
        assert clinic.context.service.get(vid).reason_code == "eligible"
        # acknowledging the alarm takes the banner away and is logged
        (alarm,) = [a for a in clinic.context.button.open_alarms() if a.device_id == "kiosk-thief"]
        assert alarm.count == 2
        cleared = staff.post(
            f"/alarms/{alarm.id}/clear", data={"csrf": csrf_of(staff), "next": "/"}
        )
        assert cleared.status_code == 303
        assert 'data-device="kiosk-thief"' not in staff.get("/").text
    actions = [e["action"] for e in clinic.context.access_log.entries(limit=20)]
    assert "alarm.clear" in actions


def test_parallel_button_presses_cannot_slip_past_the_rate(clinic):
    """Many confirmations at once from one kiosk: still only RATE succeed."""
    kiosk = clinic.kiosk("kiosk-burst")
    pending = [visual_check(clinic, kiosk) for _ in range(6)]
    clients = [clinic.connect(kiosk.cert_path, kiosk.key_path) for _ in pending]
    outcomes: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(len(pending))

    def press(client: Kiosk, vid: str) -> None:
        start.wait(timeout=10)
        try:
            client.client.confirm(vid, "confirmed")
            status = 200
        except ServerRejected as exc:
            status = exc.status or 0
        with lock:
            outcomes.append(status)

    threads = [
        threading.Thread(target=press, args=(c, v)) for c, v in zip(clients, pending, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for c in clients:
        c.close()
    print(f"\nparallel presses: {sorted(outcomes)}")
    assert sorted(outcomes) == [200] * RATE + [403] * (len(pending) - RATE)


def test_staff_see_each_button_confirmation_and_may_revoke_it_within_the_window(clinic, clock):
    kiosk = clinic.kiosk("kiosk-revoke")
    vid = visual_check(clinic, kiosk)
    assert kiosk.client.confirm(vid, "confirmed").reason_code == "eligible"
    assert clinic.context.service.get(vid).records, "the record was fetched"
    with signed_in(clinic) as staff:
        queue = staff.get("/queue").text
        row = queue[queue.index(f'id="b-{vid}"') :]
        row = row[: row.index("</tr>")]
        assert "kiosk-revoke" in row
        assert f"/verifications/{vid}/revoke" in row
        answer = staff.post(
            f"/verifications/{vid}/revoke", data={"csrf": csrf_of(staff), "next": "/queue"}
        )
        assert answer.status_code == 303
    revoked = clinic.context.service.get(vid)
    assert revoked.reason_code == "visual.revoked"
    assert revoked.records is None, "the fetched record is discarded"
    assert revoked.validity_code is None
    assert revoked.needs_staff, "the patient goes to the desk"
    assert revoked.handled_at is None
    seen = kiosk.client.wait_for_result(vid, 0)
    assert seen.patient_message == "see_staff.rejected"
    log = clinic.context.access_log.for_verification(vid)
    assert [(e["username"], e["action"]) for e in log] == [(clinic.admin, "button.revoke")]
    assert clinic.context.access_log.check_chain().intact

    # past the window the confirmation stands
    late = visual_check(clinic, kiosk)
    assert kiosk.client.confirm(late, "confirmed").reason_code == "eligible"
    clinic.clock.offset = WINDOW_S + 60
    with signed_in(clinic) as staff:
        assert f"/verifications/{late}/revoke" not in staff.get("/queue").text
        answer = staff.post(
            f"/verifications/{late}/revoke", data={"csrf": csrf_of(staff), "next": "/queue"}
        )
        assert answer.status_code == 409
    assert clinic.context.service.get(late).reason_code == "eligible"


def test_a_dashboard_confirmation_cannot_be_revoked_as_a_button_one(clinic):
    kiosk = clinic.kiosk("kiosk-desk")
    vid = visual_check(clinic, kiosk)
    with signed_in(clinic) as staff:
        staff.post(
            f"/verifications/{vid}/decide",
            data={"csrf": csrf_of(staff), "decision": "confirmed", "next": "/queue"},
        )
        answer = staff.post(
            f"/verifications/{vid}/revoke", data={"csrf": csrf_of(staff), "next": "/queue"}
        )
        assert answer.status_code == 404
    assert clinic.context.service.get(vid).reason_code == "eligible"


@pytest.fixture(scope="module")
def desk_only(population: Population, tmp_path_factory: pytest.TempPathFactory):
    """A clinic that confirms visual checks on the dashboard only (SQLite: the setting does not
    depend on the back-end)."""
    running = start_clinic(
        "sqlite",
        population,
        tmp_path_factory.mktemp("desk-only"),
        None,
        require_dashboard_confirm=True,
    )
    try:
        yield running
    finally:
        stop_clinic(running)


def test_with_dashboard_confirmation_required_the_button_is_refused(desk_only):
    kiosk = desk_only.kiosk("kiosk-1")
    vid = visual_check(desk_only, kiosk)
    with pytest.raises(ServerRejected) as refused:
        kiosk.client.confirm(vid, "confirmed")
    assert refused.value.status == 403
    assert "dashboard" in str(refused.value)
    assert "staff were called" in str(refused.value)
    waiting = desk_only.context.service.get(vid)
    assert waiting.state == "awaiting_staff"
    assert waiting.records is None
    with signed_in(desk_only) as staff:
        staff.post(
            f"/verifications/{vid}/decide",
            data={"csrf": csrf_of(staff), "decision": "confirmed", "next": "/queue"},
        )
    assert kiosk.client.wait_for_result(vid, 0).reason_code == "eligible"
    # the button's "cannot confirm" fetches nothing and stays allowed
    other = visual_check(desk_only, kiosk)
    assert kiosk.client.confirm(other, "rejected").reason_code == "visual.rejected"
