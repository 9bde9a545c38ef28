"""Words for the patient: at most three short lines a screen, the same "Close" everywhere in a
language, "please take your card" on every final screen, a "call staff" button where the
patient may be stuck, and amber (not red) when the card was only lifted too soon.

A *line* is a sentence: the title, and each sentence of the paragraphs under it (buttons and
the notice code are not counted). A *short* line is at most :data:`MAX_LINE_UNITS` wide,
counting a full-width character (kana, kanji, hangul) as two and any other as one, so the
limit reads about the same on the screen in every script. Details go to staff.
"""

from __future__ import annotations

import re
import unicodedata

import pytest

from kiosk.flow.notices import Notice
from kiosk.flow.screens import Language, PinUnavailable, Screen, ScreenId, UiAction, UiInput
from kiosk.flow.states import RemovedEarly
from kiosk.flow.views import lights_of
from kiosk.hw.signals import LightSignal
from kiosk.ui.catalog import default_catalogs
from kiosk.ui.samples import sample_name, sample_screens
from kiosk.ui.theme import Tone
from kiosk.ui.view import FINAL_SCREENS, Msg, Raw, View, describe

MAX_LINES = 3
MAX_LINE_UNITS = 64

_SENTENCE_END = re.compile(r"(?<=[。！？])|(?<=[.!?])\s+")

PATIENT_SCREENS = [
    pytest.param(screen, id=f"{language.value}-{sample_name(screen)}")
    for language in Language
    for screen in sample_screens(language)
    if screen.id is not ScreenId.STAFF_MODE
]


def units(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def resolve(view: View, text: Msg | Raw, language: Language) -> str:
    if isinstance(text, Raw):
        return text.text
    return default_catalogs()[language].text(text.key, text.n, text.on)


def lines_of(screen: Screen) -> list[str]:
    view = describe(screen)
    texts = [view.title, *(para.text for para in view.body)]
    lines: list[str] = []
    for text in texts:
        value = resolve(view, text, screen.language)
        lines += [part.strip() for part in _SENTENCE_END.split(value) if part.strip()]
    return lines


def test_sentences_are_split_as_a_reader_would() -> None:
    assert lines_of(Screen(ScreenId.TAKE_CARD, Language.JA, reminder_level=3)) == [
        "カードのお忘れ物です",
        "カードをお取りください。",
        "職員にもお知らせしました。",
    ]
    assert units("カード") == 6
    assert units("Card") == 4


@pytest.mark.parametrize("screen", PATIENT_SCREENS)
def test_each_screen_says_at_most_three_short_lines(screen: Screen) -> None:
    lines = lines_of(screen)
    assert len(lines) <= MAX_LINES, lines
    for line in lines:
        assert units(line) <= MAX_LINE_UNITS, line


@pytest.mark.parametrize("screen", [p for p in PATIENT_SCREENS if p.values[0].id in FINAL_SCREENS])
def test_every_final_screen_ends_with_take_your_card(screen: Screen) -> None:
    last = describe(screen).body[-1].text
    assert isinstance(last, Msg)
    assert last.key in {"final.take_card", "final.take_card_to_desk"}
    words = default_catalogs()[screen.language].text(last.key)
    take = default_catalogs()[screen.language].text("final.take_card").rstrip("。.")
    if screen.language in (Language.JA, Language.EN, Language.PT, Language.VI):
        assert words.startswith(take[: len(take) // 2]), words


def test_an_outage_says_no_full_fee_and_the_desk_in_three_lines() -> None:
    for notice in (Notice.SYSTEM_DOWN, Notice.SERVER_UNREACHABLE, None):
        screen = Screen(ScreenId.SERVER_UNREACHABLE, Language.JA, notice=notice)
        lines = lines_of(screen)
        assert len(lines) == MAX_LINES
        assert "10割" in lines[1]
        assert "受付" in lines[2]
        en = lines_of(Screen(ScreenId.SERVER_UNREACHABLE, Language.EN, notice=notice))
        assert "full cost" in en[1]
        assert "reception desk" in en[2]


@pytest.mark.parametrize("language", list(Language), ids=lambda lang: lang.value)
def test_close_is_one_word_in_a_language(language: Language) -> None:
    """Every button that dismisses a screen (not the PIN pad's way back) reads the same."""
    labels = set()
    for screen in sample_screens(language):
        if screen.id in (ScreenId.PIN_ENTRY, ScreenId.LANGUAGES, ScreenId.STAFF_MODE):
            continue
        for button in describe(screen).buttons():
            if button.input.action in (UiAction.DONE, UiAction.CANCEL):
                labels.add(resolve(describe(screen), button.label, language))
    assert labels == {default_catalogs()[language].text("button.close")}


def test_the_pin_and_choice_screens_have_a_call_staff_button() -> None:
    call = UiInput(UiAction.CALL_STAFF)
    screens = [
        Screen(ScreenId.CHOOSE_CHECK, tries_left=3),
        Screen(ScreenId.PIN_ENTRY, tries_left=2),
        Screen(ScreenId.PIN_ENTRY, tries_left=1, wrong_pin=True),
        *(Screen(ScreenId.CHOOSE_CHECK, pin_unavailable=reason) for reason in PinUnavailable),
    ]
    for screen in screens:
        buttons = [b for b in describe(screen).actions if b.input == call]
        assert len(buttons) == 1, screen
        assert buttons[0].label == Msg("button.call_staff")
    for screen in sample_screens():
        if screen.id not in (ScreenId.CHOOSE_CHECK, ScreenId.PIN_ENTRY):
            assert call not in describe(screen).inputs(), screen


def test_a_card_lifted_too_soon_is_amber_not_red() -> None:
    for notice in (None, Notice.CARD_REMOVED_EARLY):
        assert describe(Screen(ScreenId.REMOVED_EARLY, notice=notice)).tone is Tone.STAFF
    assert lights_of(RemovedEarly()) is LightSignal.STAFF_NEEDED
