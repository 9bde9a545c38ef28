"""Simple pictograms drawn with shapes: a card and its reader, a check mark, a member of staff.

Each is drawn at four times its size and scaled down, which gives smooth edges with only
``pygame.draw``. An animated icon has a small number of frames (:data:`FRAMES`), each drawn
once and cached, so a moving icon costs a blit per frame.
"""

from __future__ import annotations

import math
from functools import lru_cache

import pygame

from kiosk.ui.theme import AMBER, INK, RGB, SHADOW, SLATE, WHITE, hex_rgb
from kiosk.ui.view import Icon, Motion

SUPERSAMPLE = 4
#: Frames per cycle of each motion.
FRAMES: dict[Motion, int] = {Motion.STILL: 1, Motion.SPIN: 12, Motion.PULSE: 16, Motion.URGENT: 12}

_CHIP = hex_rgb("#C9A227")
_PHOTO = hex_rgb("#D5DAE3")
_PHOTO_FIGURE = hex_rgb("#8A97AD")
_CARD_LINE = hex_rgb("#B8C0CC")
_READER_TOP = hex_rgb("#454B55")
_KEY = hex_rgb("#E8EEF7")


#: x, y, width, height in unit coordinates
_Box = tuple[float, float, float, float]


class _Pen:
    """Drawing in unit coordinates (0..1) on a square surface."""

    def __init__(self, surface: pygame.Surface) -> None:
        self.surface = surface
        self.u = surface.get_width()

    def px(self, v: float) -> int:
        return round(v * self.u)

    def rect(self, x: float, y: float, w: float, h: float) -> pygame.Rect:
        return pygame.Rect(self.px(x), self.px(y), self.px(w), self.px(h))

    def box(self, color: RGB, area: _Box, radius: float = 0) -> None:
        pygame.draw.rect(self.surface, color, self.rect(*area), border_radius=self.px(radius))

    def frame(self, color: RGB, area: _Box, *, width: float, radius: float) -> None:
        pygame.draw.rect(
            self.surface,
            color,
            self.rect(*area),
            width=max(1, self.px(width)),
            border_radius=self.px(radius),
        )

    def disc(self, color: RGB | tuple[int, int, int, int], cx: float, cy: float, r: float) -> None:
        pygame.draw.circle(self.surface, color, (self.px(cx), self.px(cy)), self.px(r))

    def ring(self, color: RGB, cx: float, cy: float, r: float, width: float) -> None:
        pygame.draw.circle(
            self.surface, color, (self.px(cx), self.px(cy)), self.px(r), max(1, self.px(width))
        )

    def polygon(self, color: RGB, points: list[tuple[float, float]]) -> None:
        pygame.draw.polygon(self.surface, color, [(self.px(x), self.px(y)) for x, y in points])

    def stroke(self, color: RGB, points: list[tuple[float, float]], width: float) -> None:
        pts = [(self.px(x), self.px(y)) for x, y in points]
        pygame.draw.lines(self.surface, color, False, pts, self.px(width))
        for p in pts:  # round joints and ends
            pygame.draw.circle(self.surface, color, p, self.px(width) // 2)


def _card(pen: _Pen, accent: RGB, x: float, y: float, w: float) -> None:
    h = w * 54 / 85.6  # ID-1 card proportions
    pen.box(SHADOW, (x + 0.015, y + 0.02, w, h), 0.05)
    pen.box(WHITE, (x, y, w, h), 0.05)
    pen.frame(accent, (x, y, w, h), width=0.025, radius=0.05)
    pen.box(_CHIP, (x + w * 0.1, y + h * 0.3, w * 0.17, h * 0.24), 0.015)
    for i in range(2):
        pen.box(_CARD_LINE, (x + w * 0.1, y + h * (0.66 + i * 0.14), w * 0.45, h * 0.07), 0.01)
    px, py, pw, ph = x + w * 0.64, y + h * 0.2, w * 0.24, h * 0.58
    pen.box(_PHOTO, (px, py, pw, ph), 0.01)
    pen.disc(_PHOTO_FIGURE, px + pw / 2, py + ph * 0.38, pw * 0.2)
    pen.box(_PHOTO_FIGURE, (px + pw * 0.18, py + ph * 0.66, pw * 0.64, ph * 0.34), 0.02)


def _reader(pen: _Pen) -> None:
    pen.box(SLATE, (0.08, 0.74, 0.84, 0.2), 0.05)
    pen.box(_READER_TOP, (0.08, 0.74, 0.84, 0.06), 0.05)
    for r in (0.05, 0.09, 0.13):  # the contactless sign
        rect = pen.rect(0.5 - r, 0.86 - r, 2 * r, 2 * r)
        pygame.draw.arc(
            pen.surface, WHITE, rect, math.radians(50), math.radians(130), max(1, pen.px(0.018))
        )


def _card_place(pen: _Pen, accent: RGB, phase: float) -> None:
    _reader(pen)
    _card(pen, accent, 0.2, 0.06, 0.6)
    _down_arrow(pen, accent, 0.5, 0.5, 0.7)


def _down_arrow(pen: _Pen, color: RGB, cx: float, top: float, tip: float) -> None:
    w = 0.08
    pen.box(color, (cx - w / 2, top, w, (tip - top) * 0.45))
    pen.polygon(
        color,
        [(cx - 0.12, top + (tip - top) * 0.4), (cx + 0.12, top + (tip - top) * 0.4), (cx, tip)],
    )


def _up_arrow(pen: _Pen, color: RGB, cx: float, tip: float, bottom: float) -> None:
    w = 0.08
    head = tip + (bottom - tip) * 0.55
    pen.polygon(color, [(cx - 0.12, head), (cx + 0.12, head), (cx, tip)])
    pen.box(color, (cx - w / 2, head - 0.005, w, bottom - head))


def _card_take(pen: _Pen, accent: RGB, phase: float) -> None:
    _reader(pen)
    lift = 0.05 * (1 - math.cos(2 * math.pi * phase)) / 2
    _card(pen, accent, 0.2, 0.34 - lift, 0.6)
    _up_arrow(pen, accent, 0.5, 0.02 - lift * 0.6, 0.3 - lift)


def _spinner(pen: _Pen, accent: RGB, phase: float) -> None:
    n = 12
    for i in range(n):
        angle = 2 * math.pi * i / n - math.pi / 2
        # the lead dot is full colour, the tail fades towards the page
        age = ((phase * n - i) % n) / n
        shade = 0.15 + 0.85 * (1 - age) ** 2
        r, g, b = (round(c * shade + 235 * (1 - shade)) for c in accent)
        color = (r, g, b)
        pen.disc(color, 0.5 + 0.36 * math.cos(angle), 0.5 + 0.36 * math.sin(angle), 0.065)


def _check(pen: _Pen, accent: RGB, phase: float) -> None:
    pen.disc(accent, 0.5, 0.5, 0.46)
    pen.stroke(WHITE, [(0.28, 0.52), (0.43, 0.67), (0.73, 0.35)], 0.09)


def _staff(pen: _Pen, accent: RGB, phase: float) -> None:
    pen.disc(AMBER, 0.5, 0.5, 0.46)
    figure = pygame.Surface(pen.surface.get_size(), pygame.SRCALPHA)
    fig = _Pen(figure)
    fig.disc(INK, 0.5, 0.38, 0.14)
    pygame.draw.ellipse(figure, INK, fig.rect(0.22, 0.58, 0.56, 0.5))
    mask = pygame.Surface(pen.surface.get_size(), pygame.SRCALPHA)
    _Pen(mask).disc((255, 255, 255), 0.5, 0.5, 0.46)
    figure.blit(mask, (0, 0), special_flags=pygame.BLEND_RGBA_MIN)
    pen.surface.blit(figure, (0, 0))


def _alert(pen: _Pen, accent: RGB, phase: float) -> None:
    pen.disc(accent, 0.5, 0.5, 0.46)
    pen.box(WHITE, (0.445, 0.2, 0.11, 0.4), 0.05)
    pen.disc(WHITE, 0.5, 0.74, 0.065)


def _warning(pen: _Pen, accent: RGB, phase: float) -> None:
    pen.polygon(AMBER, [(0.5, 0.06), (0.96, 0.88), (0.04, 0.88)])
    pen.box(INK, (0.455, 0.33, 0.09, 0.32), 0.04)
    pen.disc(INK, 0.5, 0.76, 0.055)


def _pin_pad(pen: _Pen, accent: RGB, phase: float) -> None:
    pen.box(SLATE, (0.18, 0.04, 0.64, 0.92), 0.08)
    pen.box(WHITE, (0.25, 0.1, 0.5, 0.16), 0.03)
    for i in range(4):  # the PIN as dots
        pen.disc(accent, 0.32 + i * 0.12, 0.18, 0.035)
    for row in range(4):
        for col in range(3):
            if row == 3 and col != 1:
                continue
            pen.box(_KEY, (0.25 + col * 0.18, 0.32 + row * 0.155, 0.14, 0.12), 0.025)


def _globe(pen: _Pen, accent: RGB, phase: float) -> None:
    w = 0.07
    pen.ring(accent, 0.5, 0.5, 0.44, w)
    pygame.draw.ellipse(pen.surface, accent, pen.rect(0.3, 0.06, 0.4, 0.88), pen.px(w))
    pen.box(accent, (0.06, 0.5 - w / 2, 0.88, w))
    pen.box(accent, (0.16, 0.27, 0.68, w * 0.8))
    pen.box(accent, (0.16, 0.67, 0.68, w * 0.8))


_DRAW = {
    Icon.CARD_PLACE: _card_place,
    Icon.CARD_TAKE: _card_take,
    Icon.SPINNER: _spinner,
    Icon.CHECK: _check,
    Icon.STAFF: _staff,
    Icon.ALERT: _alert,
    Icon.WARNING: _warning,
    Icon.PIN_PAD: _pin_pad,
    Icon.GLOBE: _globe,
}


def _pulse_ring(pen: _Pen, accent: RGB, phase: float, urgent: bool) -> None:
    """A ring that grows from the icon's edge and fades, once per cycle."""
    grow = phase
    alpha = round((230 if urgent else 170) * (1 - grow))
    width = 0.05 if urgent else 0.035
    ring = pygame.Surface(pen.surface.get_size(), pygame.SRCALPHA)
    rp = _Pen(ring)
    pygame.draw.circle(
        ring,
        (*accent, alpha),
        (rp.px(0.5), rp.px(0.5)),
        rp.px(0.39 + 0.105 * grow),
        max(1, rp.px(width)),
    )
    pen.surface.blit(ring, (0, 0))


@lru_cache(maxsize=256)
def icon_surface(icon: Icon, size: int, accent: RGB, motion: Motion, frame: int) -> pygame.Surface:
    """``icon`` at ``size`` pixels, frame ``frame`` of its motion (0 for a still icon)."""
    frames = FRAMES[motion]
    phase = (frame % frames) / frames
    big = pygame.Surface((size * SUPERSAMPLE, size * SUPERSAMPLE), pygame.SRCALPHA)
    pen = _Pen(big)
    if motion in (Motion.PULSE, Motion.URGENT) and icon is not Icon.CARD_TAKE:
        # the icon shrinks a little to leave room for its ring inside the same square
        inner = pygame.Surface((round(big.get_width() * 0.76),) * 2, pygame.SRCALPHA)
        _DRAW[icon](_Pen(inner), accent, phase)
        offset = (big.get_width() - inner.get_width()) // 2
        big.blit(inner, (offset, offset))
        _pulse_ring(pen, accent, phase, motion is Motion.URGENT)
    else:
        _DRAW[icon](pen, accent, phase)
    return pygame.transform.smoothscale(big, (size, size))
