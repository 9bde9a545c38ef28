"""One description per screen, two panels: targets, keypad, contrast, and what each offers."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from kiosk.flow.screens import Language, PinUnavailable, Screen, ScreenId, UiAction, UiInput
from kiosk.ui import theme
from kiosk.ui.arrange import arrange, keypad_size
from kiosk.ui.catalog import Catalog, default_catalogs
from kiosk.ui.fonts import Fonts
from kiosk.ui.layouts import LANDSCAPE, LAYOUTS, PORTRAIT, Layout, layout_named
from kiosk.ui.render import draw
from kiosk.ui.view import describe, offered_inputs
from tests.support.display import check_layout, check_text_fits

DIGITS = {UiInput(UiAction.DIGIT, str(d)) for d in range(10)}


def test_fifteen_millimetres_in_pixels_on_each_panel() -> None:
    # Touch Display: 800 x 480 px on 154.08 x 85.92 mm; Touch Display 2: 720 x 1280 on 88 x 155
    assert LANDSCAPE.min_target == (78, 84)
    assert PORTRAIT.min_target == (123, 124)
    assert math.isclose(LANDSCAPE.px_per_mm_x, 5.19, abs_tol=0.01)
    assert math.isclose(PORTRAIT.px_per_mm_y, 8.26, abs_tol=0.01)


@pytest.mark.parametrize("layout", list(LAYOUTS.values()), ids=lambda layout: layout.name)
def test_keypad_keys_are_fifteen_millimetres_and_fit_the_panel(layout: Layout) -> None:
    plan = arrange(describe(Screen(ScreenId.PIN_ENTRY, tries_left=3)), layout)
    assert {key.input for key in plan.keys} == DIGITS | {UiInput(UiAction.ERASE)}
    min_w, min_h = layout.min_target
    for key in plan.keys:
        assert key.rect.width >= min_w, key
        assert key.rect.height >= min_h, key
        assert key.rect.top >= layout.header_height
        assert key.rect.bottom <= layout.height
    w_mm, h_mm = layout.mm(layout.key_width, layout.key_height)
    assert w_mm >= 15
    assert h_mm >= 15
    width, height = keypad_size(layout)
    assert width <= layout.width - 2 * layout.margin
    assert height <= layout.height - layout.header_height


def test_landscape_puts_the_keypad_beside_the_text_portrait_below() -> None:
    view = describe(Screen(ScreenId.PIN_ENTRY, tries_left=3))
    wide = arrange(view, LANDSCAPE)
    assert wide.media is not None
    assert wide.dots is not None
    assert min(k.rect.left for k in wide.keys) > wide.media.right
    assert min(k.rect.left for k in wide.keys) > wide.actions[0].rect.right
    tall = arrange(view, PORTRAIT)
    assert tall.media is not None
    assert tall.dots is not None
    assert min(k.rect.top for k in tall.keys) > tall.dots.bottom > tall.media.top
    assert tall.actions[0].rect.top > max(k.rect.bottom for k in tall.keys)


def test_buttons_sit_in_a_row_in_landscape_and_stacked_in_portrait() -> None:
    view = describe(Screen(ScreenId.IDLE))
    row = arrange(view, LANDSCAPE).actions
    assert row[0].rect.top == row[1].rect.top
    assert row[0].rect.right < row[1].rect.left
    stack = arrange(view, PORTRAIT).actions
    assert stack[0].rect.left == stack[1].rect.left
    assert stack[0].rect.bottom < stack[1].rect.top


def test_every_text_colour_pair_reaches_seven_to_one() -> None:
    pairs = {
        "body": (theme.INK, theme.PAGE),
        "primary button": (theme.PRIMARY_TEXT, theme.PRIMARY_FILL),
        "secondary button": (theme.SECONDARY_TEXT, theme.SECONDARY_FILL),
        "selected language": (theme.SECONDARY_TEXT, theme.SELECTED_FILL),
        "key": (theme.KEY_TEXT, theme.KEY_FILL),
        "correction key": (theme.ERASE_TEXT, theme.ERASE_FILL),
        "wrong PIN box": (theme.ALERT_TEXT, theme.ALERT_FILL),
        "note box": (theme.NOTE_TEXT, theme.NOTE_FILL),
        "notice code": (theme.INK, theme.BADGE_FILL),
    }
    pairs |= {f"{tone} band": (p.band_text, p.band) for tone, p in theme.PALETTES.items()}
    for name, (fg, bg) in pairs.items():
        assert theme.contrast_ratio(fg, bg) >= theme.AAA_CONTRAST, name
    assert theme.contrast_ratio(theme.WHITE, (0, 0, 0)) == pytest.approx(21.0)


def test_each_screen_offers_what_the_flow_expects() -> None:
    cancel = UiInput(UiAction.CANCEL)
    assert offered_inputs(Screen(ScreenId.IDLE)) == {
        UiInput(UiAction.NO_CARD),
        UiInput(UiAction.OPEN_LANGUAGES),
    }
    assert offered_inputs(Screen(ScreenId.LANGUAGES)) == {
        UiInput(UiAction.SET_LANGUAGE, lang.value) for lang in Language
    } | {cancel}
    call_staff = UiInput(UiAction.CALL_STAFF)
    assert offered_inputs(Screen(ScreenId.CHOOSE_CHECK, tries_left=3)) == {
        UiInput(UiAction.CHOOSE_PIN),
        UiInput(UiAction.CHOOSE_VISUAL),
        call_staff,
    }
    for reason in PinUnavailable:
        screen = Screen(ScreenId.CHOOSE_CHECK, pin_unavailable=reason)
        assert offered_inputs(screen) == {UiInput(UiAction.CHOOSE_VISUAL), call_staff}, reason
    assert offered_inputs(Screen(ScreenId.PIN_ENTRY, tries_left=2)) == DIGITS | {
        UiInput(UiAction.ERASE),
        cancel,
        call_staff,
    }
    assert offered_inputs(Screen(ScreenId.STAFF_MODE)) == {UiInput(UiAction.STAFF_EXIT)}
    for quiet in (ScreenId.READING, ScreenId.CHECKING, ScreenId.VISUAL_WAIT, ScreenId.TAKE_CARD):
        assert offered_inputs(Screen(quiet)) == frozenset(), quiet
    for closable in (ScreenId.NEEDS_STAFF, ScreenId.ERROR, ScreenId.REMOVED_EARLY):
        assert offered_inputs(Screen(closable)) == {UiInput(UiAction.DONE)}, closable


def test_enter_presses_the_pin_button_first() -> None:
    view = describe(Screen(ScreenId.CHOOSE_CHECK, tries_left=3))
    default = view.default_button()
    assert default is not None
    assert default.input == UiInput(UiAction.CHOOSE_PIN)
    assert view.actions[0] is default


def test_the_language_chooser_names_each_language_in_its_own_script(fonts: Fonts) -> None:
    frame = draw(Screen(ScreenId.LANGUAGES, Language.EN), LANDSCAPE, fonts)
    labels = {t.language: t.text for t in frame.texts if t.role == "button"}
    assert labels[Language.JA] == "日本語"
    assert labels[Language.KO] == "한국어"
    assert labels[Language.ZH] == "中文（简体）"
    assert labels[Language.EN] == "Back"  # the back button is in the language on screen
    selected = [b for b in describe(Screen(ScreenId.LANGUAGES, Language.EN)).choices if b.selected]
    assert [b.input.value for b in selected] == ["en"]


def test_the_layout_setting_names_a_panel() -> None:
    assert layout_named("portrait") is PORTRAIT
    with pytest.raises(ValueError, match=r"\[display\] layout"):
        layout_named("square")


def _with(language: Language, key: str, value: str) -> dict[Language, Catalog]:
    catalogs = dict(default_catalogs())
    messages = dict(catalogs[language].messages)
    messages[key] = value
    catalogs[language] = Catalog(language, messages)
    return catalogs


def test_the_checks_catch_text_that_does_not_fit(fonts: Fonts) -> None:
    """The screenshot checks fail on a message too long for its box."""
    long_body = " ".join(["Please read this very long sentence carefully."] * 30)
    catalogs = _with(Language.EN, "screen.idle.body", long_body)
    frame = draw(Screen(ScreenId.IDLE, Language.EN), LANDSCAPE, fonts, catalogs)
    assert [t.source for t in frame.overflowing()] == ["screen.idle.body"]
    with pytest.raises(AssertionError, match="overflows"):
        check_text_fits(frame, fonts)

    long_label = "Supercalifragilisticexpialidocious"
    catalogs = _with(Language.EN, "button.erase", long_label)
    frame = draw(Screen(ScreenId.PIN_ENTRY, Language.EN), LANDSCAPE, fonts, catalogs)
    with pytest.raises(AssertionError):
        check_text_fits(frame, fonts)


def test_the_checks_catch_targets_under_fifteen_millimetres(fonts: Fonts) -> None:
    """The same screen on a panel with twice the pixel density has targets that are too small."""
    dense = replace(LANDSCAPE, px_per_mm_x=10.4, px_per_mm_y=11.2)
    frame = draw(Screen(ScreenId.IDLE), dense, fonts)
    with pytest.raises(AssertionError, match="under 15 mm"):
        check_layout(frame)


def test_the_checks_catch_text_running_into_a_picture(fonts: Fonts) -> None:
    frame = draw(Screen(ScreenId.IDLE), LANDSCAPE, fonts)
    check_layout(frame)
    body = next(t for t in frame.texts if t.role == "body")
    frame.graphics.append(body.ink[0].inflate(4, 4))
    with pytest.raises(AssertionError, match="hits a picture"):
        check_layout(frame)
