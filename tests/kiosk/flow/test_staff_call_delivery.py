"""The server worker delivers staff calls: at once when the server answers, again every few
seconds while it cannot be reached, and late (for staff to clear) when the kiosk cleared the
call before the server could hear of it. The same report sent twice is one call on the server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from kiosk.flow.effects import CallStaff
from kiosk.flow.notices import Notice
from kiosk.flow.server_worker import ServerWorker
from tests.support.runner import FakeClinic


@pytest.fixture
def clinic() -> FakeClinic:
    return FakeClinic()


@pytest.fixture
def worker(clinic: FakeClinic) -> Iterator[ServerWorker]:
    client = clinic.client()
    worker = ServerWorker(client, lambda event: None, call_retry_s=0.1)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        client.close()


def reports(clinic: FakeClinic, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    with clinic._cond:
        while len(clinic.staff_calls) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"{len(clinic.staff_calls)} reports of {count}"
            clinic._cond.wait(left)
        return list(clinic.staff_calls)


def test_a_call_and_its_clearing_reach_a_server_that_answers(
    clinic: FakeClinic, worker: ServerWorker
) -> None:
    worker.call_staff(CallStaff(1, "no_card", Notice.NO_CARD))
    opened = reports(clinic, 1)[0]
    assert opened | {"key": ""} == {
        "key": "",
        "state": "open",
        "visit": 1,
        "reason": "no_card",
        "notice": 401,
        "verification_id": None,
        "late": False,
    }
    worker.clear_staff_call(1)
    cleared = reports(clinic, 2)[1]
    assert (cleared["key"], cleared["state"]) == (opened["key"], "cleared")
    assert worker.flush()
    assert worker.pending_calls() == 0


def test_a_call_made_while_the_server_is_down_goes_late_once_it_is_back(
    clinic: FakeClinic, worker: ServerWorker
) -> None:
    clinic.down = True
    worker.call_staff(CallStaff(4, "server_unreachable", Notice.SERVER_UNREACHABLE))
    deadline = time.monotonic() + 10
    while clinic.requests.count("POST /staff-calls") < 2:  # tried, then tried again
        assert time.monotonic() < deadline, "not retried while the server is down"
        time.sleep(0.02)
    worker.clear_staff_call(4)  # the kiosk went back to idle meanwhile
    assert worker.pending_calls() == 1, "still owed to the server"
    clinic.down = False
    delivered = reports(clinic, 1)
    assert [(r["state"], r["late"], r["visit"]) for r in delivered] == [("open", True, 4)]
    time.sleep(0.3)  # a few retry periods: nothing more is sent
    assert len(clinic.staff_calls) == 1, "staff clear a late call; the kiosk does not"
    assert worker.pending_calls() == 0


def test_a_call_cleared_before_its_first_try_is_not_sent(clinic: FakeClinic) -> None:
    client = clinic.client()
    worker = ServerWorker(client, lambda event: None)  # not started: nothing is sent yet
    worker.call_staff(CallStaff(2, "patient", Notice.NO_CARD))
    worker.clear_staff_call(2)
    assert worker.pending_calls() == 0
    worker.start()
    worker.stop()
    client.close()
    assert clinic.staff_calls == []
