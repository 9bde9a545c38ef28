"""New and changed rows pushed as server-sent events; streams end with sessions and the server."""

from __future__ import annotations

import json
import queue
import threading
import time


def test_new_verifications_are_pushed_as_server_sent_events(clinic, staff):
    events: queue.Queue = queue.Queue()
    ready = threading.Event()

    def listen():
        with staff.stream("GET", "/events", timeout=10) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            event = None
            for line in stream.iter_lines():
                ready.set()
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "verification":
                    events.put(json.loads(line[6:]))
                    return

    listener = threading.Thread(target=listen)
    listener.start()
    assert ready.wait(5)
    result = clinic.kiosk().check(clinic.card("valid-employee"), "pin")
    pushed = events.get(timeout=5)
    listener.join(5)
    assert pushed["id"] == result.verification_id
    assert pushed["status"] == "done"
    assert "Name" not in pushed


def test_stopping_the_server_ends_open_event_streams_and_long_polls(backend, population, tmp_path):
    from tests.support.clinic import fresh_database, start_clinic, stop_clinic

    with fresh_database(backend) as database:
        running = start_clinic(backend, population, tmp_path, database)
        ended = threading.Event()
        polled: dict = {}
        try:
            kiosk = running.kiosk()
            pending = kiosk.check(running.card("face-auth"), "visual")
            with running.staff_client() as client:
                running.login(client)

                def listen():
                    with client.stream("GET", "/events", timeout=30) as stream:
                        for _ in stream.iter_lines():
                            pass
                    ended.set()

                def poll():
                    polled["result"] = kiosk.client.wait_for_result(pending.verification_id, 25)

                threads = [threading.Thread(target=listen), threading.Thread(target=poll)]
                for t in threads:
                    t.start()
                time.sleep(0.5)
                started = time.monotonic()
                running.thread.server.stop()
                for t in threads:
                    t.join(10)
                assert ended.is_set()
                assert polled["result"].awaiting_staff, "the long-poll answered before the end"
                assert time.monotonic() - started < 8
        finally:
            stop_clinic(running)


def test_event_streams_keep_delivering_after_idle_keep_alives(clinic, staff):
    dashboard = clinic.server.staff_app.app.state.dashboard
    dashboard.live.heartbeat_s = 0.1
    lines: queue.Queue = queue.Queue()
    try:

        def listen():
            with staff.stream("GET", "/events", timeout=10) as stream:
                for line in stream.iter_lines():
                    lines.put(line)
                    if line.startswith("data: ") and '"id"' in line:
                        return

        listener = threading.Thread(target=listen)
        listener.start()
        keep_alives = 0
        while keep_alives < 3:
            if lines.get(timeout=5).startswith(": keep-alive"):
                keep_alives += 1
        result = clinic.kiosk().check(clinic.card("valid-employee"), "pin")
        while True:
            line = lines.get(timeout=5)
            if line.startswith("data: ") and '"id"' in line:
                break
        listener.join(5)
        assert json.loads(line[6:])["id"] == result.verification_id
    finally:
        dashboard.live.heartbeat_s = 15.0


def test_an_event_stream_ends_when_its_session_does(clinic, clock):
    dashboard = clinic.server.staff_app.app.state.dashboard
    dashboard.live.heartbeat_s = 0.1
    try:
        with clinic.staff_client() as client:
            clinic.login(client)
            with client.stream("GET", "/events", timeout=10) as stream:
                clock.offset = 16 * 60
                seen = list(stream.iter_lines())
        assert "event: logout" in seen
    finally:
        dashboard.live.heartbeat_s = 15.0


def test_a_kiosk_that_reports_a_fault_or_recovers_is_pushed_to_open_pages(clinic, staff):
    dashboard = clinic.server.staff_app.app.state.dashboard
    dashboard.live.kiosks_check_s = 0.1
    kiosk = clinic.kiosk("kiosk-live")
    kiosk.client.heartbeat("ok", {"interval_s": 60, "reader": "present"})
    pushed: queue.Queue = queue.Queue()
    ready = threading.Event()

    def listen():
        with staff.stream("GET", "/events", timeout=10) as stream:
            event, seen = None, 0
            for line in stream.iter_lines():
                ready.set()
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "kiosks":
                    pushed.put(json.loads(line[6:]))
                    seen += 1
                    if seen == 3:  # the state as it opened, the fault, the recovery
                        return

    listener = threading.Thread(target=listen)
    listener.start()
    try:
        assert ready.wait(5)
        assert pushed.get(timeout=5)["devices"] == [], "the state first, as the stream opens"
        kiosk.client.heartbeat("error", {"interval_s": 60, "reader": "absent"})
        flagged = pushed.get(timeout=5)
        assert flagged["devices"] == ["kiosk-live"]
        assert flagged["label"] == "要確認"
        kiosk.client.heartbeat("ok", {"interval_s": 60, "reader": "present"})
        assert pushed.get(timeout=5)["devices"] == []
    finally:
        listener.join(10)
        dashboard.live.kiosks_check_s = 5.0
