"""Line breaking and fitting text into a box, for CJK and for space-separated languages.

Rules:

* Japanese breaks between phrases (BudouX's model, so 「読み取り台に」 stays whole), and inside
  a phrase only when one phrase is wider than the line.
* Chinese breaks between any two characters.
* Korean, Vietnamese, Portuguese and English break at spaces; a single word wider than the
  line is split by characters and reported (``broken_word``), because the tests treat it as
  a layout defect.
* Everywhere: no line starts with closing punctuation or a small kana (、。」ー ...), none ends
  with an opening bracket, and a run of Latin letters and digits (``K-201``, ``PIN``) stays
  whole. A ``\\n`` in a message forces a break.

:func:`typeset` tries the preferred size and steps down to the smallest allowed one; text
that does not fit at the smallest size is ``overflow`` (the tests fail on it). Widths come
from the font's glyph advances, and the chosen lines are checked against their real ink
extents, so the box test measures what is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

import budoux
import pygame.freetype

from kiosk.flow.screens import Language

#: Languages whose lines break at spaces.
SPACE_SEPARATED = frozenset({Language.EN, Language.KO, Language.VI, Language.PT})

#: Characters that may not start a line (kinsoku shori, JIS X 4051 and GB/T 15834 usage).
NO_LINE_START = frozenset(
    "、。，．,.!?！？:;：；)）]］｝}」』】〕〉》〙〗’”ゝゞーァィゥェォッャュョヮヵヶぁぃぅぇぉっゃゅょゎゕゖ"
    "々〻‐゠–〜～・…‥%％"
)
#: Japanese separators after which a line may always break.
_ITEM_SEPARATORS = frozenset("・、。／")
#: Characters that may not end a line.
NO_LINE_END = frozenset("(（[［{｛「『【〔〈《〘〖‘“")


def _is_word_char(ch: str) -> bool:
    """Letters and digits of a Latin word or code, which CJK breaking keeps together."""
    return ch.isascii() and (ch.isalnum() or ch in "-_/.+@#%")


@cache
def _japanese_parser() -> budoux.Parser:
    return budoux.load_default_japanese_parser()


@dataclass(frozen=True)
class Typeset:
    """Lines chosen for a box, with what is needed to draw and check them."""

    lines: tuple[str, ...]
    size: int
    line_height: int
    #: from the block's top to the first baseline
    top: int
    #: from the block's top to the bottom of the last line's ink (or its line box)
    height: int
    #: ink extents of each line from its origin: (left, right)
    extents: tuple[tuple[int, int], ...]
    #: does not fit the box even at the smallest size
    overflow: bool
    #: a word of a space-separated language had to be split
    broken_word: bool
    #: characters the face has no glyph for
    missing_glyphs: str

    @property
    def width(self) -> int:
        return max((right for _, right in self.extents), default=0)


def _char_breaks(text: str, start: int, end: int) -> list[int]:
    """Positions in ``text[start:end]`` where a CJK line may break (before the index)."""
    out = []
    for i in range(start + 1, end):
        before, after = text[i - 1], text[i]
        if after in NO_LINE_START or before in NO_LINE_END:
            continue
        if _is_word_char(before) and _is_word_char(after):
            continue
        if after == " ":
            continue
        out.append(i)
    return out


def break_opportunities(text: str, language: Language) -> list[int]:
    """Where a line may break in ``text`` (indices of the character after the break)."""
    if language in SPACE_SEPARATED:
        return [i for i in range(1, len(text)) if text[i - 1] == " " and text[i] != " "]
    if language is Language.JA:
        out: list[int] = []
        pos = 0
        for phrase in _japanese_parser().parse(text):
            pos += len(phrase)
            if 0 < pos < len(text) and text[pos] not in NO_LINE_START:
                out.append(pos)
        # spaces break as well (a Latin word inside Japanese text), and so do the separators
        # between items (「カードがない方・資格確認書の方」)
        out += [
            i
            for i in range(1, len(text))
            if (text[i - 1] == " " and text[i] != " ")
            or (text[i - 1] in _ITEM_SEPARATORS and text[i] not in NO_LINE_START)
        ]
        return sorted(set(out))
    return _char_breaks(text, 0, len(text))


def _line_text(text: str, start: int, end: int) -> str:
    return text[start:end].strip(" ")


@dataclass(frozen=True)
class _Wrapped:
    lines: list[str]
    #: a word of a space-separated language was split
    broken: bool
    #: some line ends inside a unit (a Japanese phrase, a word): not at a break opportunity
    forced: bool


def _wrap_paragraph(text: str, language: Language, advances: list[float], width: int) -> _Wrapped:
    """Greedy lines of one hard line of ``text``."""
    breaks = [*break_opportunities(text, language), len(text)]
    prefix = [0.0]
    for adv in advances:
        prefix.append(prefix[-1] + adv)

    def span(a: int, b: int) -> float:
        # trailing and leading spaces do not count
        while b > a and text[b - 1] == " ":
            b -= 1
        while a < b and text[a] == " ":
            a += 1
        return prefix[b] - prefix[a]

    lines: list[str] = []
    broken = forced = False
    start = 0
    while start < len(text):
        fitting = [b for b in breaks if b > start and span(start, b) <= width]
        if fitting:
            end = fitting[-1]
        else:
            # the next unit alone is too wide: split it by characters
            forced = True
            unit_end = next(b for b in breaks if b > start)
            if language in SPACE_SEPARATED:
                broken = broken or unit_end - start > 1
                inside = list(range(start + 1, unit_end))
            else:
                inside = _char_breaks(text, start, unit_end)
            inner = [b for b in inside if span(start, b) <= width]
            end = inner[-1] if inner else start + 1
        line = _line_text(text, start, end)
        if line:
            lines.append(line)
        start = end
    return _Wrapped(lines, broken, forced)


def _wrap(
    text: str, language: Language, font: pygame.freetype.Font, size: int, width: int
) -> _Wrapped:
    lines: list[str] = []
    broken = forced = False
    for hard in text.split("\n"):
        if not hard.strip():
            continue
        metrics = font.get_metrics(hard, size=size)
        advances = [m[4] if m is not None else 0.0 for m in metrics]
        part = _wrap_paragraph(hard, language, advances, width)
        lines += part.lines
        broken = broken or part.broken
        forced = forced or part.forced
    return _Wrapped(lines, broken, forced)


def wrap(
    text: str, language: Language, font: pygame.freetype.Font, size: int, width: int
) -> tuple[list[str], bool]:
    """Break ``text`` into lines no wider than ``width`` at ``size`` (by glyph advances).

    Returns the lines and whether a word of a space-separated language had to be split.
    """
    wrapped = _wrap(text, language, font, size, width)
    return wrapped.lines, wrapped.broken


def _sizes(size: int, min_size: int) -> list[int]:
    sizes = []
    current = size
    while current > min_size:
        sizes.append(current)
        current -= max(1, round(current * 0.04))
    sizes.append(min_size)
    return sizes


def typeset(
    text: str,
    language: Language,
    font: pygame.freetype.Font,
    box: tuple[int, int],
    *,
    size: int,
    min_size: int,
    spacing: float = 1.35,
    max_lines: int | None = None,
    balance: bool = False,
) -> Typeset:
    """The largest size from ``size`` down to ``min_size`` at which ``text`` fits ``box``.

    ``balance`` evens out the lines (a two-line button label breaks in the middle, not
    after as much as fits on the first line).
    """
    width = box[0]
    missing = "".join(
        sorted(
            {
                ch
                for ch, m in zip(text, font.get_metrics(text, size=size), strict=True)
                if m is None and not ch.isspace()
            }
        )
    )
    result: Typeset | None = None
    for candidate in _sizes(size, max(1, min(min_size, size))):
        lines, broken = wrap(text, language, font, candidate, width)
        if balance and len(lines) > 1 and not broken:
            lines = _balanced(text, language, font, size=candidate, width=width, count=len(lines))
        result = _measure(
            lines, candidate, font, spacing=spacing, broken=broken, missing=missing, box=box
        )
        if max_lines is not None and len(lines) > max_lines:
            result = _with_overflow(result)
        if not result.overflow and not result.broken_word:
            return result
    assert result is not None
    return result


def _balanced(
    text: str, language: Language, font: pygame.freetype.Font, *, size: int, width: int, count: int
) -> list[str]:
    """The lines at the narrowest width that still needs only ``count`` lines.

    A narrower width may not split a phrase or a word that the full width kept whole.
    """
    low, high = width // count, width
    full = _wrap(text, language, font, size, width)
    best = full.lines
    while low < high:
        middle = (low + high) // 2
        trial = _wrap(text, language, font, size, middle)
        if len(trial.lines) <= count and not trial.broken and (full.forced or not trial.forced):
            best, high = trial.lines, middle
        else:
            low = middle + 1
    return best


def _with_overflow(t: Typeset) -> Typeset:
    return replace(t, overflow=True)


def _measure(
    lines: list[str],
    size: int,
    font: pygame.freetype.Font,
    *,
    spacing: float,
    broken: bool,
    missing: str,
    box: tuple[int, int],
) -> Typeset:
    width, height = box
    line_height = round(size * spacing)
    ascender = font.get_sized_ascender(size)
    descender = -font.get_sized_descender(size)
    # the baseline sits where the font's own line box would put it, centred in ours
    model_top = round((line_height - (ascender + descender)) / 2 + ascender)
    extents = []
    ink_tops = []
    ink_bottoms = []
    for line in lines:
        rect = font.get_rect(line, size=size)
        extents.append((rect.x, rect.x + rect.width))
        ink_tops.append(rect.y)
        ink_bottoms.append(rect.height - rect.y)
    if not lines:
        return Typeset((), size, line_height, model_top, 0, (), False, broken, missing)
    top = max(model_top, ink_tops[0])
    bottom = max(line_height - model_top, ink_bottoms[-1])
    total = top + (len(lines) - 1) * line_height + bottom
    # a glyph may overhang its origin a pixel or two to the left (V, W): the painter shifts
    # such a line right, so it counts towards the width
    too_wide = any(right - min(0, left) > width for left, right in extents)
    return Typeset(
        lines=tuple(lines),
        size=size,
        line_height=line_height,
        top=top,
        height=total,
        extents=tuple(extents),
        overflow=too_wide or total > height,
        broken_word=broken,
        missing_glyphs=missing,
    )
