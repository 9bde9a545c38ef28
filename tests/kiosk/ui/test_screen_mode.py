"""Opening the screen: the renderer named for KMSDRM, SDL's own choice elsewhere; presenting."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pygame
import pytest

from kiosk.ui.screen_mode import framebuffer_renderer, open_screen, present, viewport


@pytest.fixture
def display(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SDL_FRAMEBUFFER_ACCELERATION", raising=False)
    pygame.display.init()
    try:
        yield
    finally:
        pygame.display.quit()


def test_kmsdrm_gets_the_opengl_es_renderer_and_other_drivers_keep_sdls_choice() -> None:
    assert framebuffer_renderer("KMSDRM") == "opengles2"
    assert framebuffer_renderer("kmsdrm") == "opengles2"
    for driver in ("dummy", "x11", "wayland", "offscreen"):
        assert framebuffer_renderer(driver) is None


def test_a_window_on_the_dummy_driver_names_no_renderer(display: None) -> None:
    window = open_screen((800, 480), fullscreen=False)
    assert window.get_size() == (800, 480)
    assert "SDL_FRAMEBUFFER_ACCELERATION" not in os.environ


def test_a_smaller_canvas_is_scaled_to_fit_centred_on_black(display: None) -> None:
    window = open_screen((1280, 800), fullscreen=False)
    canvas = pygame.Surface((800, 480))
    canvas.fill((200, 30, 30))
    present(window, canvas)
    fitted = viewport((1280, 800), (800, 480))
    assert fitted.scale == pytest.approx(1.6)
    assert fitted.offset == (0, 16)
    assert window.get_at((640, 400))[:3] == (200, 30, 30)
    assert window.get_at((640, 5))[:3] == (0, 0, 0)  # the band above the fitted canvas


def test_a_changed_part_alone_is_copied(display: None) -> None:
    window = open_screen((800, 480), fullscreen=False)
    canvas = pygame.Surface((800, 480))
    canvas.fill((0, 90, 0))
    present(window, canvas)
    canvas.fill((255, 255, 255))
    present(window, canvas, pygame.Rect(10, 10, 20, 20))
    assert window.get_at((15, 15))[:3] == (255, 255, 255)
    assert window.get_at((100, 100))[:3] == (0, 90, 0)
