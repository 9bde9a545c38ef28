"""The one table of notice codes: every code the kiosk can show has a guide for the desk, and
what the desk says the patient saw is the kiosk's own Japanese title."""

from __future__ import annotations

import pytest

from contract.notices import STAFF_CALL_REASONS, STAFF_GUIDE, Notice
from kiosk.flow.screens import Language
from kiosk.ui.catalog import default_catalogs


def test_every_notice_has_a_guide_for_the_desk_in_both_languages() -> None:
    assert set(STAFF_GUIDE) == set(Notice)
    for notice, guide in STAFF_GUIDE.items():
        for text in (guide.patient_saw_ja, guide.patient_saw_en, guide.staff_do_ja):
            assert len(text) >= 4, notice
        assert len(guide.staff_do_en) >= 10, notice


def test_the_desk_quotes_the_title_the_patient_saw() -> None:
    ja = default_catalogs()[Language.JA]
    for notice, guide in STAFF_GUIDE.items():
        assert guide.patient_saw_ja == ja.text(f"{notice.key}.title"), notice


def test_codes_are_unique_and_found_by_number() -> None:
    numbers = [notice.number for notice in Notice]
    assert len(numbers) == len(set(numbers))
    for notice in Notice:
        assert Notice.by_number(notice.number) is notice
    with pytest.raises(ValueError, match="K-999"):
        Notice.by_number(999)


def test_the_reasons_of_a_staff_call_are_listed_once() -> None:
    assert len(STAFF_CALL_REASONS) == len(set(STAFF_CALL_REASONS))
    assert "card_left" in STAFF_CALL_REASONS
