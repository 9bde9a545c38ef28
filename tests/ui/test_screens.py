"""Every screen, in every language, on both panels: drawn, saved as PNG and checked.

For each picture: it is not blank, no text overflows its box (measured again here with the
real font), every glyph exists in the font, no word of a space-separated language is split,
every text has AAA contrast, touch targets are 15 mm or more and do not overlap, and nothing
is drawn outside the panel. The PNGs land in pytest's tmp folder (``screens/``) for a look.
"""

from __future__ import annotations

from pathlib import Path

import pygame
import pytest

from kiosk.flow.notices import Notice
from kiosk.flow.screens import Language, PinUnavailable, Screen, ScreenId
from kiosk.ui import theme
from kiosk.ui.fonts import Fonts
from kiosk.ui.layouts import LANDSCAPE, LAYOUTS, Layout
from kiosk.ui.render import Frame, draw
from kiosk.ui.samples import sample_name, sample_screens
from kiosk.ui.view import MAX_REMINDER, Raw, describe

CASES = [
    pytest.param(layout, screen, id=f"{layout.name}-{language.value}-{sample_name(screen)}")
    for layout in LAYOUTS.values()
    for language in Language
    for screen in sample_screens(language)
]


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screens")


def _colours_on_grid(surface: pygame.Surface, step: int = 16) -> set[tuple[int, int, int]]:
    w, h = surface.get_size()
    return {tuple(surface.get_at((x, y)))[:3] for x in range(0, w, step) for y in range(0, h, step)}


def check_text_fits(frame: Frame, fonts: Fonts) -> None:
    surface_rect = frame.surface.get_rect()
    for placed in frame.texts:
        where = f"{placed.role} {placed.source!r}: {placed.text!r}"
        assert not placed.overflow, f"overflows its box {placed.box}: {where}"
        assert placed.set.lines, f"nothing drawn: {where}"
        assert not placed.set.missing_glyphs, f"no glyph for {placed.set.missing_glyphs}: {where}"
        assert not placed.set.broken_word, f"a word was split: {where}"
        font = fonts.face(placed.language, bold=placed.bold)
        for line, ink in zip(placed.set.lines, placed.ink, strict=True):
            # measured again, independently of the typesetter
            rect = font.get_rect(line, size=placed.set.size)
            needed = rect.x + rect.width - min(0, rect.x)
            assert needed <= placed.box.width, f"{line!r} is {needed}px in {placed.box}: {where}"
            assert placed.box.contains(ink), f"{line!r} ink {ink} leaves {placed.box}: {where}"
            assert surface_rect.contains(ink), f"{line!r} is off the panel: {where}"
        ratio = theme.contrast_ratio(placed.fg, placed.bg)
        assert ratio >= theme.AAA_CONTRAST, f"contrast {ratio:.1f}:1 is below 7:1: {where}"


def check_layout(frame: Frame) -> None:
    layout = frame.layout
    min_w, min_h = layout.min_target
    surface_rect = frame.surface.get_rect()
    for target in frame.targets:
        w_mm, h_mm = layout.mm(target.rect.width, target.rect.height)
        small = f"{target.input} is {w_mm:.1f} x {h_mm:.1f} mm, under 15 mm"
        assert target.rect.width >= min_w, small
        assert target.rect.height >= min_h, small
        assert surface_rect.contains(target.rect), f"{target.input} is off the panel"
    for i, a in enumerate(frame.targets):
        for b in frame.targets[i + 1 :]:
            assert not a.rect.colliderect(b.rect), f"{a.input} overlaps {b.input}"
    # the words the patient reads never sit under a button, the icon or the PIN dots
    for placed in frame.texts:
        if placed.role in ("title", "body", "code"):
            for ink in placed.ink:
                hit = [t.input for t in frame.targets if t.rect.colliderect(ink)]
                assert not hit, f"{placed.text!r} lies under {hit}"
                assert ink.collidelist(frame.graphics) == -1, f"{placed.text!r} hits a picture"
    for picture in frame.graphics:
        assert surface_rect.contains(picture)
        assert picture.collidelist([t.rect for t in frame.targets]) == -1
    for i, a in enumerate(frame.texts):
        for b in frame.texts[i + 1 :]:
            assert not any(x.colliderect(y) for x in a.ink for y in b.ink), (
                f"{a.text!r} and {b.text!r} overlap"
            )


@pytest.mark.parametrize(("layout", "screen"), CASES)
def test_screen_is_drawn_legibly(layout: Layout, screen: Screen, fonts: Fonts, shots: Path) -> None:
    frame = draw(screen, layout, fonts)
    path = shots / f"{layout.name}-{screen.language.value}-{sample_name(screen)}.png"
    pygame.image.save(frame.surface, str(path))

    assert frame.surface.get_size() == layout.size
    colours = _colours_on_grid(frame.surface)
    assert len(colours) >= 4, "the picture is nearly blank"
    assert theme.PALETTES[frame.view.tone].band in colours, "no title band"
    assert frame.texts[0].role == "title"
    check_text_fits(frame, fonts)
    check_layout(frame)
    assert path.stat().st_size > 5_000


def test_samples_cover_every_screen_and_every_fact() -> None:
    screens = sample_screens()
    assert {s.id for s in screens} == set(ScreenId)
    for sid in (ScreenId.NEEDS_STAFF, ScreenId.ERROR):
        assert {s.notice for s in screens if s.id is sid} >= set(Notice)
    assert {s.pin_unavailable for s in screens if s.id is ScreenId.CHOOSE_CHECK} >= set(
        PinUnavailable
    )
    assert {s.reminder_level for s in screens if s.id is ScreenId.TAKE_CARD} == set(
        range(MAX_REMINDER + 1)
    )
    assert any(s.renew_certificate for s in screens)
    assert any(s.wrong_pin and s.tries_left for s in screens)
    assert len({sample_name(s) for s in screens}) == len(screens), "sample names collide"


def test_result_shows_no_personal_data(fonts: Fonts) -> None:
    """The eligible result says "confirmed" and "take your card": catalogue words only."""
    for renew in (False, True):
        screen = Screen(ScreenId.RESULT_OK, renew_certificate=renew)
        view = describe(screen)
        assert not any(isinstance(p.text, Raw) for p in view.body)
        frame = draw(screen, LANDSCAPE, fonts)
        sources = {t.source for t in frame.texts}
        expected = {"screen.result_ok.title", "screen.result_ok.body"}
        assert sources == expected | ({"screen.result_ok.renew"} if renew else set())
        assert not frame.targets, "the result needs no touch: taking the card ends it"


def test_pin_screen_shows_dots_never_digits(fonts: Fonts) -> None:
    typed = draw(Screen(ScreenId.PIN_ENTRY, tries_left=3, digits_typed=3), LANDSCAPE, fonts)
    fresh = draw(Screen(ScreenId.PIN_ENTRY, tries_left=3, digits_typed=0), LANDSCAPE, fonts)
    # the same texts (key labels and messages), only the dots differ
    assert [t.text for t in typed.texts] == [t.text for t in fresh.texts]
    differing = [
        (x, y)
        for x in range(0, LANDSCAPE.width, 2)
        for y in range(0, LANDSCAPE.height, 2)
        if typed.surface.get_at((x, y)) != fresh.surface.get_at((x, y))
    ]
    assert differing
    xs = [x for x, _ in differing]
    ys = [y for _, y in differing]
    dots_band = pygame.Rect(min(xs), min(ys), max(xs) - min(xs) + 1, max(ys) - min(ys) + 1)
    assert dots_band.height <= LANDSCAPE.dot_diameter + 2
    assert all(not dots_band.colliderect(t.rect) for t in typed.targets)
