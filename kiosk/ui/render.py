"""Drawing a screen: :func:`render` for a picture, :func:`draw` for the picture and its facts.

``draw`` describes the screen (:mod:`kiosk.ui.view`), arranges it for the panel
(:mod:`kiosk.ui.arrange`), fits every text into its block (:mod:`kiosk.ui.typeset`) and
paints it. It returns a :class:`Frame`: the surface plus each text with its box, colours and
drawn ink, and each touch target with the input it sends. The display uses the targets for
hit-testing; the tests use the rest to prove that nothing overflows, targets are large
enough and every text is legible.

Pure: no display, no thread, no clock. Works on any ``pygame.Surface`` with only
``pygame.freetype`` initialised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pygame
from pygame import Rect

from kiosk.flow.screens import Language, Screen, UiInput
from kiosk.ui import theme
from kiosk.ui.arrange import Key, Placed, Plan, arrange
from kiosk.ui.catalog import Catalog, default_catalogs
from kiosk.ui.fonts import Fonts
from kiosk.ui.icons import FRAMES, icon_surface
from kiosk.ui.layouts import Layout
from kiosk.ui.theme import RGB, Palette
from kiosk.ui.typeset import Typeset, typeset
from kiosk.ui.view import (
    ERASE_LABEL,
    MOTION_PERIOD_S,
    PIN_LENGTH,
    ButtonRole,
    Icon,
    Motion,
    Para,
    ParaStyle,
    Raw,
    Text,
    View,
    describe,
)

#: Line spacing, in ems.
TITLE_SPACING = 1.2
BODY_SPACING = 1.4
LABEL_SPACING = 1.2
#: Sizes of strong and lead paragraphs relative to the others.
STRONG_SCALE = 1.12
LEAD_SCALE = 1.3
#: Space between paragraphs, in ems.
PARA_GAP = 0.55


@dataclass(frozen=True)
class PlacedText:
    """One drawn text: where it had to fit, how it was set, and where its ink landed."""

    role: str  # title, code, body, button, key
    source: str  # the catalogue key, or the raw text
    text: str
    language: Language
    bold: bool
    box: Rect
    set: Typeset
    fg: RGB
    bg: RGB
    #: the baseline origin of each line
    origins: tuple[tuple[int, int], ...]
    #: the ink of each line as drawn
    ink: tuple[Rect, ...]
    #: did not fit its box even at the smallest size allowed
    overflow: bool


@dataclass(frozen=True)
class Target:
    rect: Rect
    input: UiInput
    default: bool = False


@dataclass
class Frame:
    screen: Screen
    layout: Layout
    view: View
    surface: pygame.Surface
    texts: list[PlacedText] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    #: where pictures are drawn (the icon, the PIN dots): no text may run into them
    graphics: list[Rect] = field(default_factory=list)
    #: the animated icon: where it is, and the page under it
    motion_rect: Rect | None = None
    motion_background: pygame.Surface | None = None
    _icon: tuple[Icon, int, RGB] | None = None

    @property
    def motion(self) -> Motion:
        return self.view.motion if self.motion_rect is not None else Motion.STILL

    def frame_interval_s(self) -> float | None:
        """Seconds between animation frames, or None for a still screen."""
        if self.motion is Motion.STILL:
            return None
        return MOTION_PERIOD_S[self.motion] / FRAMES[self.motion]

    def animate(self, frame_number: int) -> Rect | None:
        """Paint animation frame ``frame_number``; returns the rectangle that changed."""
        if self.motion_rect is None or self.motion_background is None or self._icon is None:
            return None
        icon, size, accent = self._icon
        self.surface.blit(self.motion_background, self.motion_rect)
        self.surface.blit(
            icon_surface(icon, size, accent, self.view.motion, frame_number), self.motion_rect
        )
        return self.motion_rect

    def overflowing(self) -> list[PlacedText]:
        return [t for t in self.texts if t.overflow]

    def target_at(self, point: tuple[int, int]) -> Target | None:
        return next((t for t in self.targets if t.rect.collidepoint(point)), None)


class _Painter:
    def __init__(
        self,
        screen: Screen,
        layout: Layout,
        fonts: Fonts,
        catalogs: Mapping[Language, Catalog],
        surface: pygame.Surface,
        *,
        view: View | None = None,
    ) -> None:
        self.screen = screen
        self.layout = layout
        self.fonts = fonts
        self.catalogs = catalogs
        self.language = screen.language
        self.view = view or describe(screen)
        self.palette: Palette = theme.PALETTES[self.view.tone]
        self.frame = Frame(screen, layout, self.view, surface)
        self.surface = surface

    # --- text -----------------------------------------------------------------------------

    def resolve(self, text: Text, language: Language | None = None) -> tuple[str, str]:
        if isinstance(text, Raw):
            return text.text, text.text
        catalog = self.catalogs[language or self.language]
        return catalog.text(text.key, text.n, text.on), text.key

    def put_text(
        self,
        role: str,
        text: Text,
        box: Rect,
        *,
        size: int,
        min_size: int,
        fg: RGB,
        bg: RGB,
        bold: bool = False,
        spacing: float = BODY_SPACING,
        center: bool = False,
        middle: bool = True,
        language: Language | None = None,
        fitted: Typeset | None = None,
        overflow: bool | None = None,
        balance: bool = False,
    ) -> PlacedText:
        """Fit ``text`` into ``box`` (unless ``fitted`` is given) and draw it."""
        lang = language or self.language
        value, source = self.resolve(text, lang)
        font = self.fonts.face(lang, bold=bold)
        ts = fitted or typeset(
            value,
            lang,
            font,
            box.size,
            size=size,
            min_size=min_size,
            spacing=spacing,
            balance=balance,
        )
        top = box.y + ((box.height - ts.height) // 2 if middle else 0)
        origins = []
        inks = []
        self.surface.set_clip(box if ts.overflow else None)
        for i, line in enumerate(ts.lines):
            left, right = ts.extents[i]
            x = box.x + (box.width - (right - left)) // 2 - left if center else box.x - min(0, left)
            y = top + ts.top + i * ts.line_height
            origins.append((x, y))
            inks.append(font.render_to(self.surface, (x, y), line, fg, size=ts.size))
        self.surface.set_clip(None)
        placed = PlacedText(
            role=role,
            source=source,
            text=value,
            language=lang,
            bold=bold,
            box=box.copy(),
            set=ts,
            fg=fg,
            bg=bg,
            origins=tuple(origins),
            ink=tuple(inks),
            overflow=ts.overflow if overflow is None else overflow,
        )
        self.frame.texts.append(placed)
        return placed

    # --- blocks -----------------------------------------------------------------------------

    def header(self, plan: Plan) -> None:
        p = self.palette
        self.surface.fill(p.band, plan.header)
        pad = max(4, self.layout.header_height // 12)
        box = plan.title.inflate(0, -2 * pad)
        self.put_text(
            "title",
            self.view.title,
            box,
            size=self.layout.title_size,
            min_size=self.layout.title_min,
            fg=p.band_text,
            bg=p.band,
            bold=True,
            spacing=TITLE_SPACING,
            balance=True,
        )
        if plan.code is not None and self.view.code is not None:
            self.code_badge(plan.code, self.view.code)

    def code_badge(self, area: Rect, code: str) -> None:
        size = self.layout.code_size
        font = self.fonts.face(self.language, bold=True)
        ink = font.get_rect(code, size=size)
        pad_x, pad_y = round(size * 0.5), round(size * 0.35)
        badge = Rect(0, 0, ink.width + 2 * pad_x, round(size * 1.25) + 2 * pad_y)
        badge.midright = area.midright
        pygame.draw.rect(self.surface, theme.BADGE_FILL, badge, border_radius=pad_y)
        self.put_text(
            "code",
            Raw(code),
            badge.inflate(-pad_x, -pad_y),
            size=size,
            min_size=size,
            fg=theme.INK,
            bg=theme.BADGE_FILL,
            bold=True,
            spacing=1.25,
            center=True,
        )

    def paragraphs(self, box: Rect) -> _Block:
        """All paragraphs, fitted at one size into ``box``."""
        view, layout = self.view, self.layout
        sizes = []
        s = layout.body_size
        while s > layout.body_min:
            sizes.append(s)
            s -= max(1, round(s * 0.04))
        sizes.append(layout.body_min)
        best = _Block([], 0, 0, overflow=False)
        for size in sizes:
            placed = []
            total = 0
            fits = True
            for para in view.body:
                boxed = para.style in (ParaStyle.ALERT, ParaStyle.NOTE)
                pad = round(size * 0.6) if boxed else 0
                value, _ = self.resolve(para.text)
                font = self.fonts.face(self.language, bold=_is_bold(para))
                inner = (box.width - 2 * pad - (_BAR if boxed else 0), 10**6)
                para_size = _para_size(para, size)
                ts = typeset(
                    value,
                    self.language,
                    font,
                    inner,
                    size=para_size,
                    min_size=para_size,
                    spacing=BODY_SPACING,
                    balance=para.style is ParaStyle.LEAD,
                )
                fits = fits and not ts.overflow and not ts.broken_word
                placed.append((para, ts, pad))
                total += ts.height + 2 * pad
            gap = round(size * PARA_GAP)
            total += gap * max(0, len(view.body) - 1)
            fits = fits and total <= box.height
            best = _Block(placed, total, gap, overflow=not fits)
            if fits:
                break
        return best

    def draw_paragraphs(self, box: Rect, block: _Block, *, top: int, center_block: bool) -> None:
        overflow = block.overflow
        plain_width = max((ts.width for p, ts, _ in block.items if not _boxed(p)), default=0)
        y = top
        for para, ts, pad in block.items:
            if _boxed(para):
                fill, fg, edge = _BOX_COLOURS[para.style]
                height = ts.height + 2 * pad
                rect = Rect(box.x, y, box.width, height)
                pygame.draw.rect(self.surface, fill, rect, border_radius=max(6, pad // 2))
                pygame.draw.rect(
                    self.surface,
                    edge,
                    Rect(rect.x, rect.y, _BAR, rect.height),
                    border_top_left_radius=max(6, pad // 2),
                    border_bottom_left_radius=max(6, pad // 2),
                )
                inner = Rect(
                    rect.x + _BAR + pad, rect.y + pad, rect.width - _BAR - 2 * pad, ts.height
                )
                self.put_text(
                    "body",
                    para.text,
                    inner,
                    size=ts.size,
                    min_size=ts.size,
                    fg=fg,
                    bg=fill,
                    bold=_is_bold(para),
                    fitted=ts,
                    overflow=overflow,
                    middle=False,
                )
            else:
                height = ts.height
                x = box.x
                if center_block:
                    x = box.x + (box.width - plain_width) // 2
                inner = Rect(x, y, box.right - x, ts.height)
                self.put_text(
                    "body",
                    para.text,
                    inner,
                    size=ts.size,
                    min_size=ts.size,
                    fg=theme.INK,
                    bg=theme.PAGE,
                    bold=_is_bold(para),
                    fitted=ts,
                    overflow=overflow,
                    middle=False,
                )
            y += height + block.gap

    def media(self, area: Rect) -> None:
        """The icon and the paragraphs in ``area``."""
        layout, view = self.layout, self.view
        gap = layout.gap
        if view.icon is None:
            block = self.paragraphs(area)
            self.draw_paragraphs(area, block, top=area.y, center_block=not layout.icon_beside)
            return
        icon_size = min(layout.icon_size, area.height, area.width)
        if layout.icon_beside:
            icon_rect = Rect(area.x, area.centery - icon_size // 2, icon_size, icon_size)
            text_box = Rect(icon_rect.right + 2 * gap, area.y, 0, area.height)
            text_box.width = area.right - text_box.x
            block = self.paragraphs(text_box)
            top = text_box.y + max(0, (text_box.height - block.height) // 2)
            self.draw_paragraphs(text_box, block, top=top, center_block=False)
        else:
            text_box = Rect(area.x, area.y + icon_size + 2 * gap, area.width, 0)
            text_box.height = max(0, area.bottom - text_box.y)
            block = self.paragraphs(text_box)
            group = icon_size + 2 * gap + min(block.height, text_box.height)
            top = area.y + max(0, (area.height - group) // 2)
            icon_rect = Rect(area.centerx - icon_size // 2, top, icon_size, icon_size)
            self.draw_paragraphs(text_box, block, top=icon_rect.bottom + 2 * gap, center_block=True)
        self.icon(view.icon, icon_rect)

    def icon(self, icon: Icon, rect: Rect) -> None:
        accent = self.palette.accent
        self.frame.graphics.append(rect.copy())
        if self.view.motion is not Motion.STILL:
            self.frame.motion_rect = rect.copy()
            self.frame.motion_background = self.surface.subsurface(rect).copy()
            self.frame._icon = (icon, rect.width, accent)
        self.surface.blit(icon_surface(icon, rect.width, accent, self.view.motion, 0), rect)

    def dots(self, area: Rect, typed: int, total: int) -> None:
        d = self.layout.dot_diameter
        step = round(d * 1.9)
        width = d + step * (total - 1)
        x0 = area.centerx - width // 2 + d // 2
        self.frame.graphics.append(Rect(x0 - d // 2, area.centery - d // 2, width, d))
        for i in range(total):
            center = (x0 + i * step, area.centery)
            if i < typed:
                pygame.draw.circle(self.surface, theme.DOT_FILLED, center, d // 2)
            else:
                pygame.draw.circle(self.surface, theme.DOT_EMPTY, center, d // 2, max(3, d // 9))

    def button(self, placed: Placed) -> None:
        b, rect, layout = placed.button, placed.rect, self.layout
        if b.role is ButtonRole.PRIMARY:
            fill, fg, edge = theme.PRIMARY_FILL, theme.PRIMARY_TEXT, theme.PRIMARY_FILL
        elif b.selected:
            fill, fg, edge = theme.SELECTED_FILL, theme.SECONDARY_TEXT, theme.SECONDARY_EDGE
        else:
            fill, fg, edge = theme.SECONDARY_FILL, theme.SECONDARY_TEXT, theme.SECONDARY_EDGE
        radius = max(10, rect.height // 7)
        shadow = rect.move(0, max(3, rect.height // 28))
        pygame.draw.rect(self.surface, theme.SHADOW, shadow, border_radius=radius)
        pygame.draw.rect(self.surface, fill, rect, border_radius=radius)
        edge_width = max(3, rect.height // 26) * (2 if b.selected else 1)
        pygame.draw.rect(self.surface, edge, rect, width=edge_width, border_radius=radius)
        pad_x = max(layout.gap, round(layout.button_size * 0.5))
        pad_y = max(6, round(layout.button_size * 0.22))
        inner = rect.inflate(-2 * pad_x, -2 * pad_y)
        if b.icon is not None:
            side = min(inner.height, round(layout.button_size * 1.5))
            lang = b.language or self.language
            value, _ = self.resolve(b.label, lang)
            font = self.fonts.face(lang, bold=True)
            text_box = Rect(inner.x + side + layout.gap // 2 + pad_x // 2, inner.y, 0, inner.height)
            text_box.width = inner.right - text_box.x
            ts = typeset(
                value,
                lang,
                font,
                text_box.size,
                size=layout.button_size,
                min_size=layout.button_min,
                spacing=LABEL_SPACING,
            )
            group = side + layout.gap // 2 + ts.width
            gx = inner.x + max(0, (inner.width - group) // 2)
            icon_rect = Rect(gx, inner.centery - side // 2, side, side)
            self.surface.blit(icon_surface(b.icon, side, fg, Motion.STILL, 0), icon_rect)
            text_box = Rect(icon_rect.right + layout.gap // 2, inner.y, 0, inner.height)
            text_box.width = inner.right - text_box.x
            self.put_text(
                "button",
                b.label,
                text_box,
                size=ts.size,
                min_size=ts.size,
                fg=fg,
                bg=fill,
                bold=True,
                spacing=LABEL_SPACING,
                language=lang,
                fitted=ts,
            )
        else:
            lang = b.language or self.language
            value, _ = self.resolve(b.label, lang)
            ts = typeset(
                value,
                lang,
                self.fonts.face(lang, bold=True),
                inner.size,
                size=layout.button_size,
                min_size=layout.button_min,
                spacing=LABEL_SPACING,
                balance=True,
            )
            self.put_text(
                "button",
                b.label,
                inner,
                size=ts.size,
                min_size=ts.size,
                fg=fg,
                bg=fill,
                bold=True,
                spacing=LABEL_SPACING,
                center=True,
                language=lang,
                fitted=ts,
            )
        self.frame.targets.append(Target(rect.copy(), b.input, b.default))

    def key(self, key: Key) -> None:
        layout = self.layout
        erase = key.input.value is None
        fill = theme.ERASE_FILL if erase else theme.KEY_FILL
        fg = theme.ERASE_TEXT if erase else theme.KEY_TEXT
        radius = max(8, key.rect.height // 8)
        pygame.draw.rect(self.surface, theme.SHADOW, key.rect.move(0, 3), border_radius=radius)
        pygame.draw.rect(self.surface, fill, key.rect, border_radius=radius)
        pygame.draw.rect(self.surface, theme.KEY_EDGE, key.rect, width=2, border_radius=radius)
        if erase:
            pad = max(6, layout.key_width // 12)
            self.put_text(
                "key",
                ERASE_LABEL,
                key.rect.inflate(-2 * pad, -2 * pad),
                size=layout.button_size,
                min_size=layout.button_min,
                fg=fg,
                bg=fill,
                bold=True,
                spacing=LABEL_SPACING,
                center=True,
            )
        else:
            self.put_text(
                "key",
                Raw(key.input.value or ""),
                key.rect.inflate(-8, -8),
                size=layout.key_size,
                min_size=layout.key_size,
                fg=fg,
                bg=fill,
                bold=True,
                spacing=1.2,
                center=True,
            )
        self.frame.targets.append(Target(key.rect.copy(), key.input))

    def paint(self) -> Frame:
        plan = arrange(self.view, self.layout)
        self.surface.fill(theme.PAGE)
        self.header(plan)
        if plan.media is not None and (self.view.body or self.view.icon is not None):
            self.media(plan.media)
        if plan.dots is not None and self.view.dots is not None:
            self.dots(plan.dots, self.view.dots, PIN_LENGTH)
        for key in plan.keys:
            self.key(key)
        for placed in plan.choices + plan.actions:
            self.button(placed)
        return self.frame


_BAR = 8


@dataclass(frozen=True)
class _Block:
    """Paragraphs fitted together: each with its set and box padding, and the whole."""

    items: list[tuple[Para, Typeset, int]]
    height: int
    gap: int
    overflow: bool


_BOX_COLOURS: dict[ParaStyle, tuple[RGB, RGB, RGB]] = {
    ParaStyle.ALERT: (theme.ALERT_FILL, theme.ALERT_TEXT, theme.ALERT_EDGE),
    ParaStyle.NOTE: (theme.NOTE_FILL, theme.NOTE_TEXT, theme.NOTE_EDGE),
}


def _boxed(para: Para) -> bool:
    return para.style in _BOX_COLOURS


def _para_size(para: Para, size: int) -> int:
    """Strong paragraphs are set a little larger, the lead (the one thing to do) larger still."""
    scale = {ParaStyle.STRONG: STRONG_SCALE, ParaStyle.LEAD: LEAD_SCALE}.get(para.style, 1.0)
    return round(size * scale)


def _is_bold(para: Para) -> bool:
    return para.style in (ParaStyle.STRONG, ParaStyle.LEAD, ParaStyle.ALERT)


def draw(
    screen: Screen,
    layout: Layout,
    fonts: Fonts,
    catalogs: Mapping[Language, Catalog] | None = None,
    surface: pygame.Surface | None = None,
    *,
    view: View | None = None,
) -> Frame:
    """Paint ``screen`` for ``layout`` onto ``surface`` (a new one if None).

    ``view`` replaces the screen's own description (:func:`~kiosk.ui.view.describe`): for a
    screen outside the patient flow, such as the unenrolled unit's (``kiosk.enrolment``).
    """
    target = surface if surface is not None else pygame.Surface(layout.size)
    if target.get_size() != layout.size:
        raise ValueError(f"surface is {target.get_size()}, the layout needs {layout.size}")
    return _Painter(
        screen, layout, fonts, catalogs or default_catalogs(), target, view=view
    ).paint()


def render(
    screen: Screen,
    layout: Layout,
    fonts: Fonts,
    catalogs: Mapping[Language, Catalog] | None = None,
) -> pygame.Surface:
    """``screen`` as a picture of ``layout``'s size, as the patient would see it."""
    return draw(screen, layout, fonts, catalogs).surface
