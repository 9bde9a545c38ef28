"""Opening the screen and putting a drawn canvas on it: one way for every full-screen program.

The kiosk's UI (:mod:`kiosk.ui.display`) and the unenrolled unit's screen
(:mod:`kiosk.enrolment.unenrolled`) both open the display here and present through here.

On KMSDRM (the appliance), SDL has no framebuffer of its own for a window: the pixels pygame
draws go to a texture that one of SDL's renderers puts on screen. Left to itself, SDL picks
its desktop OpenGL renderer first; on a KMSDRM display, whose EGL surface is set up for OpenGL
ES, the frames that renderer draws never reach the scan-out buffer: page flips succeed and the
screen stays black. Naming the OpenGL ES 2 renderer (``SDL_FRAMEBUFFER_ACCELERATION``) is what
makes the frames arrive. Other drivers (a window in the demo, the dummy driver in tests) keep
SDL's own choice.
"""

from __future__ import annotations

import os

import pygame

from kiosk.ui.input import Viewport

#: The SDL renderer for the window's pixels, per video driver (SDL's lower-case names).
FRAMEBUFFER_RENDERERS = {"kmsdrm": "opengles2"}


def framebuffer_renderer(driver: str) -> str | None:
    """The renderer to name for ``driver``, or None to leave SDL's choice."""
    return FRAMEBUFFER_RENDERERS.get(driver.lower())


def open_screen(size: tuple[int, int], *, fullscreen: bool) -> pygame.Surface:
    """The display (``pygame.display.init()`` done): the whole screen at the display's own
    mode, with no mouse pointer, or a window of ``size``."""
    renderer = framebuffer_renderer(pygame.display.get_driver())
    if renderer is not None:
        # read by SDL when the window's surface is made (set_mode), not at init; a value the
        # maintainer set in the environment stays
        os.environ.setdefault("SDL_FRAMEBUFFER_ACCELERATION", renderer)
    pygame.display.set_caption("Onshi Kiosk")
    if not fullscreen:
        return pygame.display.set_mode(size)
    window = pygame.display.set_mode((0, 0), pygame.FULLSCREEN)
    pygame.mouse.set_visible(False)
    return window


def viewport(window: tuple[int, int], canvas: tuple[int, int]) -> Viewport:
    """The canvas fitted into the window, centred, aspect kept."""
    scale = min(window[0] / canvas[0], window[1] / canvas[1])
    width, height = round(canvas[0] * scale), round(canvas[1] * scale)
    return Viewport(window, ((window[0] - width) // 2, (window[1] - height) // 2), scale)


def present(
    window: pygame.Surface, canvas: pygame.Surface, changed: pygame.Rect | None = None
) -> None:
    """Copy the canvas (or its ``changed`` part) to the window and show it; a canvas smaller
    than the window is scaled to fit, centred, on black."""
    if window.get_size() == canvas.get_size():
        if changed is None:
            window.blit(canvas, (0, 0))
            pygame.display.flip()
        else:
            window.blit(canvas, changed, changed)
            pygame.display.update(changed)
        return
    fitted = viewport(window.get_size(), canvas.get_size())
    scaled = pygame.transform.smoothscale_by(canvas, fitted.scale)
    window.fill((0, 0, 0))
    window.blit(scaled, fitted.offset)
    pygame.display.flip()
