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
from kiosk.ui.render import draw
from kiosk.ui.samples import sample_name, sample_screens
from kiosk.ui.view import MAX_REMINDER, Raw, describe
from tests.support.display import check_layout, check_text_fits, colours_on_grid

CASES = [
    pytest.param(layout, screen, id=f"{layout.name}-{language.value}-{sample_name(screen)}")
    for layout in LAYOUTS.values()
    for language in Language
    for screen in sample_screens(language)
]


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screens")


@pytest.mark.parametrize(("layout", "screen"), CASES)
def test_screen_is_drawn_legibly(layout: Layout, screen: Screen, fonts: Fonts, shots: Path) -> None:
    frame = draw(screen, layout, fonts)
    path = shots / f"{layout.name}-{screen.language.value}-{sample_name(screen)}.png"
    pygame.image.save(frame.surface, str(path))

    assert frame.surface.get_size() == layout.size
    colours = colours_on_grid(frame.surface)
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
        middle = "screen.result_ok.renew" if renew else "screen.result_ok.body"
        assert sources == {"screen.result_ok.title", middle, "final.take_card"}
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
