"""Journal fields reach a real journald, and can be found by field as a maintainer would.

The program logs through :func:`kiosk.supervision.configure_logging` with its stderr on a
journald of the test's own (:mod:`tests.support.journald`: a real ``systemd-journald`` in a
private mount namespace, the program's output connected as systemd connects a service's).
So the entries below travelled through systemd-python's ``journal.send`` and journald's native
protocol, and ``journalctl -o json NOTICE=K-201`` is the query a maintainer types.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from tests.support.journald import run_under_journald

PROGRAM = textwrap.dedent(
    """
    import logging, sys
    from kiosk.sim.people import PREFECTURES, Person
    from kiosk.supervision import JournalHandler, configure_logging, stderr_is_journal
    from datetime import date

    assert stderr_is_journal(), "JOURNAL_STREAM must name this stderr"
    handler = configure_logging(journald=stderr_is_journal())
    assert isinstance(handler, JournalHandler), handler
    log = logging.getLogger("kiosk.flow.journal")
    log.info(
        "verification.outcome route=error notice=K-201",
        extra={"FLOW_EVENT": "verification.outcome", "FLOW_STATE": "error",
               "NOTICE": "K-201", "READER": "Virtual PCD 00 00", "DEVICE": "reception-1",
               "OUTBOX_DEPTH": 12345},
    )
    logging.getLogger("kiosk.outbox").warning(
        "sent to https://127.0.0.1:8443 at 2026-12-01T03:50:25Z, seq 1796097058620354",
        extra={"DEVICE": "reception-1"},
    )
    person = Person("見本 花子", "ﾐﾎﾝ ﾊﾅｺ", "2", date(1961, 2, 3), "東京都見本区試験町9-9",
                    "176-0009", PREFECTURES[0])
    log.error("rejected %s", person, extra={"insurer_number": "06139800", "PATIENT": person,
                                           "NOTICE": "K-211"})
    print("plain stderr line", file=sys.stderr, flush=True)
    """
)


def test_fields_reach_journald_and_are_found_by_field(tmp_path: Path) -> None:
    program = tmp_path / "program.py"  # a file: the journal records a process's command line
    program.write_text(PROGRAM, encoding="utf-8")
    run = run_under_journald(
        [sys.executable, str(program)],
        tmp_path,
        queries=[
            ["NOTICE=K-201"],
            ["FLOW_STATE=error", "DEVICE=reception-1"],
            ["SYSLOG_IDENTIFIER=kiosk", "PRIORITY=4"],
            ["NOTICE=K-211"],
            ["_TRANSPORT=stdout", "SYSLOG_IDENTIFIER=onshi-test"],
        ],
    )
    assert run.returncode == 0, run.everything
    notice, state, warning, rejected, stream = run.found
    (entry,) = notice
    assert entry["MESSAGE"] == "verification.outcome route=error notice=K-201"
    assert entry["_TRANSPORT"] == "journal"  # the native protocol, not the stderr stream
    assert entry["PRIORITY"] == "6"
    assert entry["SYSLOG_IDENTIFIER"] == "kiosk"
    assert entry["LOGGER"] == "kiosk.flow.journal"
    assert entry["FLOW_EVENT"] == "verification.outcome"
    assert entry["FLOW_STATE"] == "error"
    assert entry["READER"] == "Virtual PCD 00 00"
    assert entry["OUTBOX_DEPTH"] == "12345"
    assert [e["MESSAGE"] for e in state] == [entry["MESSAGE"]]
    (sent,) = warning
    # ports, timestamps and long numbers are not data: they survive
    assert sent["MESSAGE"] == (
        "sent to https://127.0.0.1:8443 at 2026-12-01T03:50:25Z, seq 1796097058620354"
    )
    (refused,) = rejected
    assert refused["MESSAGE"] == "rejected <redacted>"
    assert refused["PATIENT"] == "<redacted>"
    assert "insurer_number" not in refused
    assert "INSURER_NUMBER" not in refused
    assert [e["MESSAGE"] for e in stream] == ["plain stderr line"]
    for personal in ("見本", "花子", "ﾐﾎﾝ", "19610203", "1961-02-03", "06139800", "試験町"):
        assert personal not in run.everything
