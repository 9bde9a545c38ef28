"""The dashboard's error page: errors of the layers below, mapped once (``clinic.http_errors``)."""

from __future__ import annotations

import httpx

from tests.support.clinic import csrf_of, database_unavailable


def test_an_unknown_verification_shows_the_not_found_page(clinic, staff):
    answer = staff.post(f"/verifications/{'0' * 32}/handled", data={"csrf": csrf_of(staff)})
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "見つかりません。" in answer.text
    assert clinic.admin in answer.text, "the page keeps the signed-in header"


def test_a_pending_visual_check_cannot_be_marked_handled(clinic, staff):
    pending = clinic.kiosk().check(clinic.card("face-auth"), "visual")
    answer = staff.post(
        f"/verifications/{pending.verification_id}/handled", data={"csrf": csrf_of(staff)}
    )
    assert answer.status_code == 409
    assert "この確認はすでに処理されています。" in answer.text
    assert clinic.context.service.get(pending.verification_id).state == "awaiting_staff"


def test_a_busy_database_shows_a_try_again_page_with_503_and_retry_after(clinic, staff):
    staff.timeout = httpx.Timeout(30.0)  # longer than the server's SQLite busy timeout
    pending = clinic.kiosk().check(clinic.card("face-auth"), "visual")
    url = f"/verifications/{pending.verification_id}/decide"
    form = {"decision": "confirmed", "csrf": csrf_of(staff)}
    with database_unavailable(clinic):
        answer = staff.post(url, data=form)
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert answer.headers["content-type"].startswith("text/html")
    assert "少し待ってからもう一度操作してください" in answer.text
    assert answer.headers["x-frame-options"] == "DENY", "the protective headers still apply"
    assert staff.post(url, data=form).status_code == 303, "it recovers"
    assert clinic.context.service.get(pending.verification_id).state == "done"
