"""What the touch-screen tests share: the inputs a display sent, and checks of a drawn frame."""

from __future__ import annotations

import queue

import pygame

from kiosk.flow.screens import UiInput
from kiosk.ui import theme
from kiosk.ui.fonts import Fonts
from kiosk.ui.render import Frame


class Inputs:
    """What a display sent to its ``on_input``, collected from the UI thread."""

    def __init__(self) -> None:
        self.queue: queue.Queue[UiInput] = queue.Queue()

    def __call__(self, ui_input: UiInput) -> None:
        self.queue.put(ui_input)

    def next(self, timeout: float = 3.0) -> UiInput:
        return self.queue.get(timeout=timeout)

    def none_within(self, seconds: float) -> bool:
        try:
            self.queue.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


def colours_on_grid(surface: pygame.Surface, step: int = 16) -> set[tuple[int, int, int]]:
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
