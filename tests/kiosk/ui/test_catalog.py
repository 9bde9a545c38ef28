"""The message catalogues: the same keys everywhere, real translations, the right facts.

The keys a catalogue must hold are the ones the screens and the voice prompts use (found by
describing every sample screen and listing every prompt), with one entry per plural category
for a count. A key missing in a language, a key nobody uses, a value left in English, a
placeholder lost in translation or Japanese where it does not belong fails here.
"""

from __future__ import annotations

import re
from datetime import date

import pytest

from contract.errors import ConfigError
from kiosk.flow.notices import Notice
from kiosk.flow.screens import Language, PinUnavailable
from kiosk.ui.catalog import (
    PLACEHOLDERS,
    PLURAL_CATEGORIES,
    PLURAL_KEYS,
    Catalog,
    default_catalogs,
    expand_plurals,
    format_date,
    load_catalog,
    parse_catalog,
    placeholders,
    plural_category,
)
from kiosk.ui.samples import sample_screens
from kiosk.ui.view import Msg, describe
from kiosk.ui.voice import all_prompts

#: Values that may read the same as in English: proper nouns only. None today; a new one is
#: added here on purpose, with the language, so an untranslated value never slips through.
SAME_AS_ENGLISH_ALLOWED: frozenset[tuple[Language, str]] = frozenset()

#: Keys that say a day: ``{date}``, and nothing else.
DATED_KEYS = frozenset({"screen.result_ok.expires", "screen.result_ok.expired"})

AUTONYMS = {
    Language.JA: "日本語",
    Language.EN: "English",
    Language.ZH: "中文（简体）",
    Language.KO: "한국어",
    Language.VI: "Tiếng Việt",
    Language.PT: "Português",
}

KANA = re.compile(r"[\u3040-\u30ff]")
HAN = re.compile(r"[\u3400-\u9fff]")
HANGUL = re.compile(r"[\uac00-\ud7af]")
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
#: Japanese names of papers, kept in brackets in other languages so a patient can match the
#: paper in hand: "(資格確認書)".
JAPANESE_IN_BRACKETS = re.compile(r"[（(][^()（）]*[\u3040-\u30ff\u3400-\u9fff][^()（）]*[)）]")


def used_messages() -> list[Msg]:
    messages = [Msg("language.name")]
    for language in Language:
        for screen in sample_screens(language):
            messages += describe(screen).messages()
    for prompt in all_prompts():
        messages += prompt.parts
    return messages


def required_keys() -> frozenset[str]:
    return frozenset(m.key for m in used_messages())


@pytest.fixture(scope="module")
def catalogs() -> dict[Language, Catalog]:
    return {language: load_catalog(language) for language in Language}


@pytest.mark.parametrize("language", list(Language), ids=lambda lang: lang.value)
def test_catalogue_has_exactly_the_keys_in_use(
    language: Language, catalogs: dict[Language, Catalog]
) -> None:
    expected = expand_plurals(required_keys(), language)
    present = frozenset(catalogs[language].messages)
    assert not sorted(expected - present), f"missing in {language.value}"
    assert not sorted(present - expected), f"not used anywhere, in {language.value}"


def test_counted_messages_are_exactly_the_plural_keys() -> None:
    counted = {m.key for m in used_messages() if m.n is not None}
    assert counted == PLURAL_KEYS


@pytest.mark.parametrize("notice", list(Notice), ids=lambda n: n.name)
def test_every_notice_has_a_title_and_advice_in_every_language(
    notice: Notice, catalogs: dict[Language, Catalog]
) -> None:
    for language, catalog in catalogs.items():
        for part in ("title", "advice"):
            value = catalog.messages.get(f"{notice.key}.{part}", "")
            assert len(value) >= 4, f"{notice.key}.{part} in {language.value}"


@pytest.mark.parametrize("language", list(Language), ids=lambda lang: lang.value)
def test_placeholders_survive_translation(
    language: Language, catalogs: dict[Language, Catalog]
) -> None:
    for key, value in catalogs[language].messages.items():
        found = placeholders(value)
        assert found <= PLACEHOLDERS, f"{key}: unknown placeholder in {value!r}"
        base, _, category = key.rpartition(".")
        if base in PLURAL_KEYS:
            if category == "other":
                assert "n" in found, f"{key} must show the count: {value!r}"
        elif key in DATED_KEYS:
            assert found == {"date"}, f"{key} must show the date: {value!r}"
        else:
            assert not found, f"{key} takes no count: {value!r}"
        assert value == value.strip(), f"{key}: stray spaces"
        assert "  " not in value, f"{key}: stray spaces"


@pytest.mark.parametrize(
    "language", [lang for lang in Language if lang is not Language.EN], ids=lambda lang: lang.value
)
def test_nothing_is_left_in_english(language: Language, catalogs: dict[Language, Catalog]) -> None:
    english = catalogs[Language.EN].messages
    same = [
        key
        for key, value in catalogs[language].messages.items()
        if english.get(key) == value and (language, key) not in SAME_AS_ENGLISH_ALLOWED
    ]
    assert not same, f"identical to English in {language.value}: {same}"


@pytest.mark.parametrize("language", list(Language), ids=lambda lang: lang.value)
def test_each_language_is_written_in_its_own_script(
    language: Language, catalogs: dict[Language, Catalog]
) -> None:
    for key, value in catalogs[language].messages.items():
        outside_brackets = JAPANESE_IN_BRACKETS.sub("", value)
        if language is Language.JA:
            assert KANA.search(value) or HAN.search(value), f"{key} is not Japanese: {value!r}"
        elif language is Language.ZH:
            assert HAN.search(value), f"{key} is not Chinese: {value!r}"
            assert not KANA.search(outside_brackets), f"{key} has Japanese kana: {value!r}"
        elif language is Language.KO:
            assert HANGUL.search(value), f"{key} is not Korean: {value!r}"
            assert not KANA.search(outside_brackets), f"{key} has Japanese kana: {value!r}"
        else:
            assert not CJK.search(outside_brackets), f"{key} has CJK outside brackets: {value!r}"
        if language is Language.VI:
            assert re.search(r"[^\x00-\x7f]", value), f"{key} has no Vietnamese letter: {value!r}"
        if language in (Language.JA, Language.ZH):
            assert not re.search(r"[,.] ", value), f"{key} uses Latin punctuation: {value!r}"


def test_language_names_are_each_in_their_own_language(
    catalogs: dict[Language, Catalog],
) -> None:
    assert {lang: cat.text("language.name") for lang, cat in catalogs.items()} == AUTONYMS


def test_plural_forms_follow_each_language() -> None:
    cats = default_catalogs()
    assert cats[Language.EN].text("pin.tries_left", 1) == "You have 1 try left."
    assert cats[Language.EN].text("pin.tries_left", 2) == "You have 2 tries left."
    assert cats[Language.PT].text("pin.wrong", 1).endswith("resta 1 tentativa.")
    assert cats[Language.PT].text("pin.wrong", 3).endswith("restam 3 tentativas.")
    assert cats[Language.JA].text("pin.tries_left", 2) == "入力できるのは、あと2回です。"
    for language in Language:
        assert {plural_category(language, n) for n in range(10)} == set(PLURAL_CATEGORIES[language])


def test_japanese_words_name_the_offices_and_the_full_fee() -> None:
    """The patient learns where to go and that an outage costs them nothing extra; which
    papers prove their insurance is for staff to ask (the notice code tells staff)."""
    ja = default_catalogs()[Language.JA]
    for key in (
        "notice.system_down.advice",
        "notice.server_unreachable.advice",
        "screen.server_unreachable.body",
    ):
        assert "10割" in ja.text(key), key
    assert "受付" in ja.text("final.take_card_to_desk")
    for key in ("notice.revoked.advice", "notice.expired.advice", "pin_unavailable.locked"):
        assert "市区町村" in ja.text(key), key
    assert "顔認証" in ja.text("pin_unavailable.no_pin")
    assert "資格確認書" in ja.text("button.no_card")
    assert "資格確認書" in ja.text("screen.no_card_help.body")


@pytest.mark.parametrize("language", list(Language), ids=lambda lang: lang.value)
def test_papers_keep_their_japanese_names_for_foreign_patients(language: Language) -> None:
    """A patient abroad holds a paper titled in Japanese: the words name it that way too."""
    assert "資格確認書" in default_catalogs()[language].text("screen.no_card_help.body")


@pytest.mark.parametrize("reason", list(PinUnavailable), ids=lambda r: r.value)
def test_every_reason_for_no_pin_is_explained(reason: PinUnavailable) -> None:
    for catalog in default_catalogs().values():
        key = f"pin_unavailable.{reason.value}"
        n = 1 if key in PLURAL_KEYS else None
        assert len(catalog.text(key, n)) > 10


def test_a_broken_catalogue_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"messages/xx\.toml"):
        parse_catalog(Language.EN, "[button\nok = 1", "messages/xx.toml")
    with pytest.raises(ConfigError, match=r"button\.ok must be a string"):
        parse_catalog(Language.EN, "[button]\nok = 1", "messages/xx.toml")


def test_a_missing_message_shows_its_key_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    catalog = parse_catalog(Language.EN, '[button]\nok = "OK"')
    assert catalog.text("button.ok") == "OK"
    assert catalog.text("button.back") == "button.back"
    assert "button.back" in caplog.text


def test_dates_are_written_as_each_language_writes_them() -> None:
    day = date(2027, 3, 9)
    written = {language: format_date(language, day) for language in Language}
    assert written == {
        Language.JA: "2027年3月9日",
        Language.EN: "9 March 2027",
        Language.ZH: "2027年3月9日",
        Language.KO: "2027년 3월 9일",
        Language.VI: "9/3/2027",
        Language.PT: "09/03/2027",
    }
    ja = default_catalogs()[Language.JA]
    assert ja.text("screen.result_ok.expires", on=day) == (
        "電子証明書の期限は2027年3月9日です（市区町村で更新を）。"
    )
