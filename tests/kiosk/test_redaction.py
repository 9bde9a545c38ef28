"""What may go into a log line: decided by a field's name and a value's type, not its shape."""

from __future__ import annotations

import logging

from cryptography import x509
from cryptography.x509.oid import NameOID

from kiosk.redaction import REDACTED, clean_record, clean_value, personal_data


@personal_data
class Patient:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Patient({self.name})"


def test_numbers_ids_ports_and_timestamps_are_not_data() -> None:
    for value in (8443, "127.0.0.1:35963", "reception-1234", "2026-12-01T03:50:25Z", 2**40):
        assert clean_value(value) == value
    assert clean_value((1, "K-201")) == (1, "K-201")


def test_personal_keys_are_blanked_at_any_depth_and_types_refused() -> None:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ABCDE12345")])
    value = {
        "seq": 12345,
        "InsurerNumber": "06139800",
        "nested": [{"birth_date": "19550401", "tries_left": 3}],
        "who": Patient("Yamada Taro"),
        "subject_dn": name,
    }
    assert clean_value(value) == {
        "seq": 12345,
        "InsurerNumber": REDACTED,
        "nested": [{"birth_date": REDACTED, "tries_left": 3}],
        "who": REDACTED,
        "subject_dn": REDACTED,
    }


def test_a_record_is_cleaned_as_a_copy() -> None:
    record = logging.LogRecord("kiosk", logging.INFO, __file__, 1, "to %s for %r", None, None)
    record.args = ("reception-1", Patient("Yamada Taro"))
    record.name_kana = "ﾔﾏﾀﾞ"
    record.READER = "Virtual PCD 00 00"
    clean = clean_record(record)
    assert clean.getMessage() == "to reception-1 for '<redacted>'"
    assert clean.name_kana == REDACTED  # type: ignore[attr-defined]
    assert clean.READER == "Virtual PCD 00 00"  # type: ignore[attr-defined]
    assert record.getMessage() == "to reception-1 for Patient(Yamada Taro)"
