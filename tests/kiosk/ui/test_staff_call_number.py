"""A screen that called staff prints the call's short number next to the notice code, and it
still fits the title band on every panel, in every language."""

from __future__ import annotations

import pytest

from kiosk.flow.notices import Notice
from kiosk.flow.screens import Language, Screen, ScreenId
from kiosk.ui.fonts import Fonts
from kiosk.ui.layouts import LAYOUTS, Layout
from kiosk.ui.render import draw
from tests.support.display import check_layout, check_text_fits


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=lambda layout: layout.name)
@pytest.mark.parametrize("language", list(Language), ids=lambda language: language.value)
def test_the_call_number_is_shown_with_the_code_and_fits(
    layout: Layout, language: Language, fonts: Fonts
) -> None:
    screen = Screen(ScreenId.NEEDS_STAFF, language, notice=Notice.NEWER_QUALIFICATION, visit=1234)
    frame = draw(screen, layout, fonts)
    assert frame.view.code == "K-212 #234"
    check_text_fits(frame, fonts)
    check_layout(frame)


def test_a_screen_without_a_call_shows_the_code_alone(fonts: Fonts) -> None:
    screen = Screen(ScreenId.ERROR, notice=Notice.NOT_MY_NUMBER_CARD)
    frame = draw(screen, next(iter(LAYOUTS.values())), fonts)
    assert frame.view.code == "K-102"
