"""Line breaking for Japanese, Chinese and space-separated languages, and fitting into a box."""

from __future__ import annotations

import pytest

from kiosk.flow.screens import Language
from kiosk.ui.fonts import Fonts
from kiosk.ui.typeset import NO_LINE_END, NO_LINE_START, break_opportunities, typeset, wrap

JA = "マイナンバーカードを読み取り台に置いてください。暗証番号は入力せずにお待ちください。"
ZH = "请将卡平放在读卡器上，不要拿开。也可以使用智能手机。请出示Mynaportal的画面。"
EN = "Please place the card again and leave it until the end of the check."


def _lines(text: str, language: Language, fonts: Fonts, width: int, size: int = 26) -> list[str]:
    lines, broken = wrap(text, language, fonts.face(language), size, width)
    assert not broken
    return lines


@pytest.mark.parametrize("width", [270, 300, 360, 420, 520])
def test_japanese_breaks_between_phrases(fonts: Fonts, width: int) -> None:
    # every phrase (the longest, マイナンバーカードを, is 260 px) fits on a line
    lines = _lines(JA, Language.JA, fonts, width)
    assert "".join(lines) == JA
    allowed = set(break_opportunities(JA, Language.JA))
    position = 0
    for line in lines[:-1]:
        position += len(line)
        assert position in allowed, f"broke inside a phrase: {lines}"
    assert "読み取り台に" in "|".join(lines)


def test_a_japanese_phrase_wider_than_the_line_is_split_by_characters(fonts: Fonts) -> None:
    lines = _lines(JA, Language.JA, fonts, 160)
    assert "".join(lines) == JA
    assert lines[0] == "マイナンバー"
    for line in lines:
        assert line[0] not in NO_LINE_START, lines


@pytest.mark.parametrize("width", [140, 170, 250, 330])
def test_chinese_breaks_anywhere_but_keeps_punctuation_and_latin_words(
    fonts: Fonts, width: int
) -> None:
    lines = _lines(ZH, Language.ZH, fonts, width)
    assert "".join(lines) == ZH
    for line in lines:
        assert line[0] not in NO_LINE_START, lines
        assert line[-1] not in NO_LINE_END, lines
    if fonts.face(Language.ZH).get_rect("Mynaportal", size=26).width <= width:
        assert any("Mynaportal" in line for line in lines), "the Latin word was split"


def test_a_full_stop_never_starts_a_line(fonts: Fonts) -> None:
    face = fonts.face(Language.ZH)
    # exactly as wide as the first three characters: the 。 must not go to the next line
    width = face.get_rect("请稍候", size=26).width + 1
    lines = _lines("请稍候。请将卡留在读卡器上。", Language.ZH, fonts, width)
    assert all(line[0] != "。" for line in lines), lines


@pytest.mark.parametrize("language", [Language.EN, Language.VI, Language.PT, Language.KO])
def test_space_separated_languages_break_at_spaces(fonts: Fonts, language: Language) -> None:
    text = {
        Language.EN: EN,
        Language.VI: "Vui lòng đặt lại thẻ và để yên cho đến khi xong việc xác nhận.",
        Language.PT: "Coloque o cartão de novo e deixe-o até o fim da verificação.",
        Language.KO: "카드를 다시 올리고, 끝날 때까지 그대로 두세요. 직원에게도 알렸습니다.",
    }[language]
    lines = _lines(text, language, fonts, 240)
    assert len(lines) > 1
    assert " ".join(lines) == text
    words = set(text.split())
    assert all(set(line.split()) <= words for line in lines)


def test_a_word_wider_than_the_box_is_split_and_reported(fonts: Fonts) -> None:
    face = fonts.face(Language.EN)
    lines, broken = wrap("Pneumonoultramicroscopic", Language.EN, face, 30, 120)
    assert broken
    assert len(lines) > 1
    assert "".join(lines) == "Pneumonoultramicroscopic"


def test_text_shrinks_to_fit_and_overflows_only_below_the_smallest_size(fonts: Fonts) -> None:
    face = fonts.face(Language.EN)
    roomy = typeset(EN, Language.EN, face, (800, 200), size=30, min_size=20)
    assert roomy.size == 30
    assert not roomy.overflow
    tight = typeset(EN, Language.EN, face, (300, 70), size=30, min_size=16)
    assert 16 <= tight.size < 30
    assert not tight.overflow
    assert tight.height <= 70
    assert tight.width <= 300
    impossible = typeset(EN, Language.EN, face, (200, 30), size=30, min_size=24)
    assert impossible.overflow
    assert impossible.size == 24


def test_a_line_limit_counts_as_overflow(fonts: Fonts) -> None:
    face = fonts.face(Language.EN)
    limited = typeset(EN, Language.EN, face, (240, 400), size=26, min_size=26, max_lines=2)
    assert limited.overflow
    assert len(limited.lines) > 2


def test_glyphs_missing_from_the_font_are_reported(fonts: Fonts) -> None:
    face = fonts.face(Language.EN)
    assert typeset("OK", Language.EN, face, (300, 80), size=24, min_size=24).missing_glyphs == ""
    thai = typeset("OK ก", Language.EN, face, (300, 80), size=24, min_size=24)
    assert thai.missing_glyphs == "ก"


def test_vietnamese_stacked_diacritics_have_glyphs_and_stay_in_the_box(fonts: Fonts) -> None:
    text = "Ở ĐÂY CẤP LẠI CHỨNG THƯ: Ễ Ỗ Ữ Ặ Ẫ Ỷ"
    face = fonts.face(Language.VI, bold=True)
    result = typeset(text, Language.VI, face, (700, 120), size=30, min_size=30)
    assert result.missing_glyphs == ""
    assert not result.overflow
    ink_top = max(face.get_rect(line, size=30).y for line in result.lines[:1])
    assert result.top >= ink_top, "the stacked marks would poke out of the line"


def test_balanced_lines_are_more_even(fonts: Fonts) -> None:
    face = fonts.face(Language.JA, bold=True)
    label = "カードがない方・資格確認書の方"
    greedy = typeset(label, Language.JA, face, (400, 200), size=27, min_size=27)
    balanced = typeset(label, Language.JA, face, (400, 200), size=27, min_size=27, balance=True)
    assert len(greedy.lines) == len(balanced.lines) == 2

    def spread(lines: tuple[str, ...]) -> int:
        widths = [face.get_rect(line, size=27).width for line in lines]
        return max(widths) - min(widths)

    assert spread(balanced.lines) < spread(greedy.lines)
    assert balanced.lines == ("カードがない方・", "資格確認書の方")
