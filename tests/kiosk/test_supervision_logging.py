"""Logging for the journal: priorities journald reads, and no personal data in any line."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.supervision import configure_logging, redact, stderr_is_journal, syslog_priority


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


PERSONAL = [
    "123456789012",  # a My Number
    "06139800",  # an insurer number
    "1234",  # a PIN
    "19550401",  # a birth date
    "山田 太郎",
    "ヤマダ タロウ",
]


def test_every_journal_line_carries_the_priority_of_its_record(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(journald=True, level=logging.DEBUG)
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


def test_a_traceback_stays_at_its_priority_line_by_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(journald=True)
    try:
        raise RuntimeError("reader went away")
    except RuntimeError:
        logging.getLogger("kiosk.card").exception("card.reader_gone")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) > 3
    assert all(line.startswith("<3>") for line in lines)
    assert lines[0] == "<3>kiosk.card: card.reader_gone"
    assert lines[-1] == "<3>RuntimeError: reader went away"


@pytest.mark.parametrize("journald", [True, False])
def test_no_personal_data_reaches_the_log_even_through_arguments_and_exceptions(
    capsys: pytest.CaptureFixture[str], journald: bool
) -> None:
    configure_logging(journald=journald)
    log = logging.getLogger("kiosk.flow")
    log.info("verified %s born %s pin %s", PERSONAL[0], PERSONAL[3], PERSONAL[2])
    log.warning("name %s / %s insurer %s", PERSONAL[4], PERSONAL[5], PERSONAL[1])
    try:
        raise ValueError(f"bad record for {PERSONAL[4]} {PERSONAL[0]}")
    except ValueError:
        log.exception("record.rejected K-211")
    log.info("stack", stack_info=True, extra={"x": PERSONAL[0]})
    err = capsys.readouterr().err
    for item in PERSONAL:
        assert item not in err
    for part in ("山田", "太郎", "0401"):
        assert part not in err
    assert "<redacted>" in err
    assert "record.rejected K-211" in err  # codes pass untouched
    assert "ValueError: bad record for <redacted> <redacted>" in err


def test_the_terminal_format_keeps_its_timestamp(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(journald=False)
    logging.getLogger("kiosk").warning("disk slow")
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith(" WARNING kiosk: disk slow")
    assert line[:4].isdigit()  # the year of the timestamp is not mistaken for data


def test_other_handlers_still_see_the_original_record(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(journald=True)
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logging.getLogger().addHandler(Keep())
    logging.getLogger("kiosk").info("card %s", "1234")
    assert "1234" not in capsys.readouterr().err
    assert seen == ["card 1234"]


def test_configuring_twice_leaves_one_handler() -> None:
    configure_logging(journald=True)
    handler = configure_logging(journald=False)
    assert logging.getLogger().handlers == [handler]


def test_redact_keeps_codes_and_short_numbers() -> None:
    assert redact("K-201 tries_left=3 card.removed") == "K-201 tries_left=3 card.removed"
    assert redact("pin 0000 ok") == "pin <redacted> ok"
    assert redact("東京都") == "<redacted>"


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
