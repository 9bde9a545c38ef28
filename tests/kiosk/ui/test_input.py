"""From touches, clicks and keys to UiInput: the mapping on its own, clock in hand."""

from __future__ import annotations

import pygame
import pytest

from kiosk.flow.screens import PinUnavailable, Screen, ScreenId, UiAction, UiInput
from kiosk.ui import input as ui_input
from kiosk.ui.fonts import Fonts
from kiosk.ui.input import InputMapper, Viewport
from kiosk.ui.layouts import LANDSCAPE, PORTRAIT, Layout
from kiosk.ui.render import Frame, draw

PIN = Screen(ScreenId.PIN_ENTRY, tries_left=3)
LATER = 10.0  # well after the settle time of a new screen


def mapper_for(
    screen: Screen, fonts: Fonts, layout: Layout = LANDSCAPE
) -> tuple[InputMapper, Frame]:
    frame = draw(screen, layout, fonts)
    mapper = InputMapper(Viewport(layout.size))
    mapper.show(frame, 0.0)
    return mapper, frame


def centre_of(frame: Frame, wanted: UiInput) -> tuple[int, int]:
    return next(t.rect.center for t in frame.targets if t.input == wanted)


def finger(
    point: tuple[float, float], size: tuple[int, int], kind: int = pygame.FINGERDOWN
) -> pygame.event.Event:
    return pygame.event.Event(
        kind, x=point[0] / size[0], y=point[1] / size[1], touch_id=1, finger_id=0
    )


def key(code: int, scancode: int = 0) -> pygame.event.Event:
    return pygame.event.Event(pygame.KEYDOWN, key=code, scancode=scancode, mod=0, unicode="")


def digit(d: str) -> UiInput:
    return UiInput(UiAction.DIGIT, d)


def test_a_touch_presses_the_key_under_the_finger(fonts: Fonts) -> None:
    for layout in (LANDSCAPE, PORTRAIT):
        mapper, frame = mapper_for(PIN, fonts, layout)
        for d in "0123456789":
            point = centre_of(frame, digit(d))
            assert mapper.handle(finger(point, layout.size), LATER + int(d)) == digit(d)
        erase = centre_of(frame, UiInput(UiAction.ERASE))
        assert mapper.handle(finger(erase, layout.size), LATER + 20) == UiInput(UiAction.ERASE)


def test_lifting_the_finger_and_touching_nothing_send_nothing(fonts: Fonts) -> None:
    mapper, frame = mapper_for(PIN, fonts)
    point = centre_of(frame, digit("5"))
    assert mapper.handle(finger(point, LANDSCAPE.size), LATER) == digit("5")
    assert mapper.handle(finger(point, LANDSCAPE.size, pygame.FINGERUP), LATER + 1) is None
    assert mapper.handle(finger((5, 5), LANDSCAPE.size), LATER + 2) is None  # the title band


def test_mouse_clicks_count_but_not_twice_for_one_touch(fonts: Fonts) -> None:
    mapper, frame = mapper_for(Screen(ScreenId.IDLE), fonts)
    point = centre_of(frame, UiInput(UiAction.NO_CARD))

    def click(button: int, touch: bool) -> pygame.event.Event:
        return pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=point, button=button, touch=touch)

    assert mapper.handle(click(pygame.BUTTON_LEFT, touch=True), LATER) is None  # SDL's copy
    assert mapper.handle(click(pygame.BUTTON_RIGHT, touch=False), LATER + 1) is None
    assert mapper.handle(click(pygame.BUTTON_LEFT, touch=False), LATER + 2) == UiInput(
        UiAction.NO_CARD
    )


def test_a_double_tap_presses_once(fonts: Fonts) -> None:
    mapper, frame = mapper_for(PIN, fonts)
    five = centre_of(frame, digit("5"))
    six = centre_of(frame, digit("6"))
    size = LANDSCAPE.size
    assert mapper.handle(finger(five, size), LATER) == digit("5")
    assert mapper.handle(finger(five, size), LATER + 0.08) is None
    assert mapper.handle(finger(six, size), LATER + 0.12) == digit("6")  # another key: fine
    assert mapper.handle(finger(six, size), LATER + 0.12 + ui_input.REPEAT_GUARD_S) == digit("6")


def test_a_new_screen_ignores_the_second_tap_that_opened_it(fonts: Fonts) -> None:
    choose = draw(Screen(ScreenId.CHOOSE_CHECK, tries_left=3), LANDSCAPE, fonts)
    mapper = InputMapper(Viewport(LANDSCAPE.size))
    mapper.show(choose, 0.0)
    pin_button = centre_of(choose, UiInput(UiAction.CHOOSE_PIN))
    assert mapper.handle(finger(pin_button, LANDSCAPE.size), 1.0) == UiInput(UiAction.CHOOSE_PIN)
    pin = draw(PIN, LANDSCAPE, fonts)
    mapper.show(pin, 1.05)
    # the second tap of the double tap lands where a key now is
    under = pin.target_at(pin_button)
    assert under is not None
    assert mapper.handle(finger(pin_button, LANDSCAPE.size), 1.15) is None
    assert (
        mapper.handle(finger(pin_button, LANDSCAPE.size), 1.05 + ui_input.SETTLE_S) == under.input
    )
    # a dot more on the same screen is not a new screen
    mapper.show(
        draw(Screen(ScreenId.PIN_ENTRY, tries_left=3, digits_typed=1), LANDSCAPE, fonts), 3.0
    )
    seven = centre_of(pin, digit("7"))
    assert mapper.handle(finger(seven, LANDSCAPE.size), 3.01) == digit("7")


@pytest.mark.parametrize(
    ("code", "scancode", "expected"),
    [
        (pygame.K_KP7, 95, digit("7")),
        (pygame.K_KP0, 98, digit("0")),
        (pygame.K_3, 32, digit("3")),
        (pygame.K_UNKNOWN, 90, digit("2")),  # a keypad key without Num Lock: by scancode
        (pygame.K_KP_PERIOD, 99, UiInput(UiAction.ERASE)),
        (pygame.K_BACKSPACE, 42, UiInput(UiAction.ERASE)),
        (pygame.K_ESCAPE, 41, UiInput(UiAction.CANCEL)),
        (pygame.K_KP_MINUS, 86, UiInput(UiAction.CANCEL)),
        (pygame.K_KP_ENTER, 88, None),  # the PIN goes on the fourth digit: no Enter
        (pygame.K_a, 4, None),
    ],
)
def test_keypad_keys_on_the_pin_screen(
    fonts: Fonts, code: int, scancode: int, expected: UiInput | None
) -> None:
    mapper, _ = mapper_for(PIN, fonts)
    assert mapper.handle(key(code, scancode), LATER) == expected


def test_enter_presses_the_default_button_and_digits_do_nothing_elsewhere(fonts: Fonts) -> None:
    mapper, _ = mapper_for(Screen(ScreenId.CHOOSE_CHECK, tries_left=3), fonts)
    assert mapper.handle(key(pygame.K_KP_ENTER), LATER) == UiInput(UiAction.CHOOSE_PIN)
    assert mapper.handle(key(pygame.K_RETURN), LATER) == UiInput(UiAction.CHOOSE_PIN)
    # typing the PIN too early chooses nothing (1 and 2 must not pick a button)
    assert mapper.handle(key(pygame.K_KP1, 89), LATER) is None
    assert mapper.handle(key(pygame.K_KP2, 90), LATER) is None
    assert mapper.handle(key(pygame.K_ESCAPE), LATER) is None  # no Back on this screen

    locked = Screen(ScreenId.CHOOSE_CHECK, pin_unavailable=PinUnavailable.LOCKED)
    mapper, _ = mapper_for(locked, fonts)
    assert mapper.handle(key(pygame.K_KP_ENTER), LATER) == UiInput(UiAction.CHOOSE_VISUAL)

    mapper, _ = mapper_for(Screen(ScreenId.IDLE), fonts)
    assert mapper.handle(key(pygame.K_KP_ENTER), LATER) is None
    mapper, _ = mapper_for(Screen(ScreenId.LANGUAGES), fonts)
    assert mapper.handle(key(pygame.K_ESCAPE), LATER) == UiInput(UiAction.CANCEL)


def test_a_scaled_window_maps_touches_back_to_the_layout(fonts: Fonts) -> None:
    frame = draw(PIN, LANDSCAPE, fonts)
    # an 800x480 screen shown centred in a 1024x768 window, scaled by 1.28
    viewport = Viewport((1024, 768), (0, 77), 1.28)
    mapper = InputMapper(viewport)
    mapper.show(frame, 0.0)
    x, y = centre_of(frame, digit("9"))
    window_point = (x * 1.28, y * 1.28 + 77)
    assert mapper.handle(finger(window_point, (1024, 768)), LATER) == digit("9")
