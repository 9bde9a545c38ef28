"""Logging for the journal: fields and priorities journald reads, no personal data anywhere."""

from __future__ import annotations

import logging
import os
import sys
from datetime import date
from pathlib import Path

import pytest

from kiosk.card.jpki import PinEntry
from kiosk.redaction import is_personal_field
from kiosk.sim.people import PREFECTURES, Person
from kiosk.supervision import (
    JournalFormatter,
    JournalHandler,
    configure_logging,
    stderr_is_journal,
    syslog_priority,
)

PERSONAL = [
    "山田 太郎",
    "ヤマダ タロウ",
    "東京都練馬区見本町1-2-3",
]
PERSONAL_NUMBERS = {
    "InsurerNumber": "06139800",
    "insured_symbol": "4521",
    "InsuredIdentificationNumber": "7730911",
    "birthdate": "19550401",
    "pin": "1234",
    "certificate_subject": "CN=ABCDE12345",
}


def test_every_journal_line_carries_the_priority_of_its_record(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_stderr_fallback(logging.DEBUG)
    log = logging.getLogger("kiosk.flow")
    log.debug("tick")
    log.info("card placed")
    log.warning("reader slow")
    log.error("server unreachable: K-302")
    log.critical("outbox corrupt")
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "<7>kiosk.flow: tick",
        "<6>kiosk.flow: card placed",
        "<4>kiosk.flow: reader slow",
        "<3>kiosk.flow: server unreachable: K-302",
        "<2>kiosk.flow: outbox corrupt",
    ]


def configure_stderr_fallback(level: int = logging.INFO) -> None:
    """The ``<N>`` stderr lines used under journald when systemd-python is missing."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JournalFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def test_a_traceback_stays_at_its_priority_line_by_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_stderr_fallback()
    try:
        raise RuntimeError("reader went away")
    except RuntimeError:
        logging.getLogger("kiosk.card").exception("card.reader_gone")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) > 3
    assert all(line.startswith("<3>") for line in lines)
    assert lines[0] == "<3>kiosk.card: card.reader_gone"
    assert lines[-1] == "<3>RuntimeError: reader went away"


class Sent(list[tuple[str, dict[str, object]]]):
    """A stand-in for ``systemd.journal.send``: keeps each entry (message, fields)."""

    def __call__(self, message: str, **fields: object) -> None:
        self.append((message, fields))

    def text(self) -> str:
        return repr(list(self))


def log_personal_data_every_way(log: logging.Logger) -> None:
    """Personal data handed to logging as fields, mapping arguments, personal types and free
    text; none of it may come out."""
    person = Person(
        name=PERSONAL[0],
        name_kana=PERSONAL[1],
        sex="1",
        birthdate=date(1955, 4, 1),
        address=PERSONAL[2],
        post_number="176-0001",
        prefecture=PREFECTURES[0],
    )
    log.info("verified", extra={**PERSONAL_NUMBERS, "NOTICE": "K-201"})
    log.info("record %(InsurerNumber)s %(pin)s", PERSONAL_NUMBERS)
    log.info("nested %s", {"records": [PERSONAL_NUMBERS], "outer": {"NameKana": PERSONAL[1]}})
    log.warning("person %r", person, extra={"PATIENT": person})
    entry = PinEntry.__new__(PinEntry)  # the type alone is refused, whatever it holds
    log.warning("pin entry %s", entry)
    log.info("name %s / %s", PERSONAL[0], PERSONAL[1])
    try:
        raise ValueError(f"bad record for {PERSONAL[0]} at {PERSONAL[2]}")
    except ValueError:
        log.exception("record.rejected K-211")
    log.info("stack", stack_info=True, extra={"address": PERSONAL[2]})


def assert_nothing_personal(text: str) -> None:
    for item in [*PERSONAL, *PERSONAL_NUMBERS.values(), "山田", "太郎", "ﾔﾏﾀﾞ", "1955-04-01"]:
        assert item not in text, item


@pytest.mark.parametrize("journald", [True, False])
def test_no_personal_data_reaches_the_stderr_log_by_any_way(
    capsys: pytest.CaptureFixture[str], journald: bool
) -> None:
    if journald:
        configure_stderr_fallback()
    else:
        configure_logging(journald=False)
    log_personal_data_every_way(logging.getLogger("kiosk.flow"))
    err = capsys.readouterr().err
    assert_nothing_personal(err)
    assert "<redacted>" in err
    assert "record.rejected K-211" in err  # codes pass untouched
    assert "ValueError: bad record for <redacted> <redacted> at <redacted>1-2-3" in err


def test_no_personal_data_reaches_the_journal_fields_or_messages() -> None:
    sent = Sent()
    configure_logging(journald=True, sender=sent)
    log_personal_data_every_way(logging.getLogger("kiosk.flow"))
    assert_nothing_personal(sent.text())
    first_message, first = sent[0]
    assert first_message == "verified"
    assert first["NOTICE"] == "K-201"
    assert not {"InsurerNumber", "pin", "birthdate"} & set(first)  # not journal field names
    patient = next(fields for _, fields in sent if "PATIENT" in fields)
    assert patient["PATIENT"] == "<redacted>"
    assert all("CODE_ARGS" not in fields for _, fields in sent)
    rejected = next(m for m, _ in sent if m.startswith("record.rejected"))
    assert "Traceback" in rejected
    assert "ValueError: bad record for <redacted> <redacted> at <redacted>1-2-3" in rejected


def test_ports_ids_and_timestamps_survive() -> None:
    sent = Sent()
    configure_logging(journald=True, sender=sent)
    log = logging.getLogger("kiosk.outbox")
    stamp = "2026-12-01T03:50:25.123456+00:00"
    log.info(
        "sent to https://127.0.0.1:8443 as reception-1234 at %s, seq %d",
        stamp,
        1796097058620354,
        extra={"DEVICE": "reception-1234", "OUTBOX_DEPTH": 12345, "PORT": 35963},
    )
    ((message, fields),) = sent
    assert message == (
        f"sent to https://127.0.0.1:8443 as reception-1234 at {stamp}, seq 1796097058620354"
    )
    assert fields["DEVICE"] == "reception-1234"
    assert fields["OUTBOX_DEPTH"] == "12345"
    assert fields["PORT"] == "35963"
    assert fields["PRIORITY"] == "6"
    assert fields["LOGGER"] == "kiosk.outbox"
    assert fields["SYSLOG_IDENTIFIER"] == "kiosk"


def test_the_journal_gets_only_journal_named_fields_and_none_of_its_own_overridden() -> None:
    sent = Sent()
    configure_logging(journald=True, sender=sent)
    logging.getLogger("kiosk").info(
        "x", extra={"lower": "a", "FLOW_STATE": "idle", "READER": None, "_HIDDEN": "b"}
    )
    ((_, fields),) = sent
    assert fields["FLOW_STATE"] == "idle"
    assert not {"lower", "READER", "_HIDDEN"} & set(fields)


def test_the_terminal_format_keeps_its_timestamp(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(journald=False)
    logging.getLogger("kiosk").warning("disk slow")
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith(" WARNING kiosk: disk slow")
    assert line[:4].isdigit()  # the year of the timestamp is not mistaken for data


def test_other_handlers_still_see_the_original_record(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(journald=False)
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logging.getLogger().addHandler(Keep())
    logging.getLogger("kiosk").info("card %s", PERSONAL[0])
    assert PERSONAL[0] not in capsys.readouterr().err
    assert seen == [f"card {PERSONAL[0]}"]


def test_configuring_twice_leaves_one_handler() -> None:
    configure_logging(journald=True, sender=Sent())
    handler = configure_logging(journald=False)
    assert logging.getLogger().handlers == [handler]


def test_under_journald_systemd_python_is_what_sends() -> None:
    from systemd import journal

    handler = configure_logging(journald=True)
    assert isinstance(handler, JournalHandler)
    assert handler._send is journal.send


def test_field_names_are_compared_without_case_or_separators() -> None:
    for name in ("NameKana", "name_kana", "NAME-KANA", "InsurerNumber", "insurer_number"):
        assert is_personal_field(name)
    for name in ("FLOW_STATE", "NOTICE", "READER", "DEVICE", "tries_left", "wrong_pins"):
        assert not is_personal_field(name)


def test_priorities_follow_syslog() -> None:
    assert [syslog_priority(n) for n in (10, 20, 25, 30, 40, 50, 60)] == [7, 6, 6, 4, 3, 2, 2]


def test_stderr_is_the_journal_only_when_journal_stream_names_it(tmp_path: Path) -> None:
    with (tmp_path / "stream").open("w") as stream:
        st = os.fstat(stream.fileno())
        named = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        assert stderr_is_journal(named, fd=stream.fileno())
        assert not stderr_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:1"}, fd=stream.fileno())
        assert not stderr_is_journal({"JOURNAL_STREAM": "garbage"}, fd=stream.fileno())
        assert not stderr_is_journal({}, fd=stream.fileno())
