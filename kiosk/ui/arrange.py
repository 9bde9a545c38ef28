"""The layout engine: where each block of a :class:`~kiosk.ui.view.View` goes on a panel.

One set of rules serves both panels; the :class:`~kiosk.ui.layouts.Layout` switches three
of them. Landscape (800x480) puts the keypad and the icon beside the text and the buttons in
a row; portrait (720x1280) stacks them. Buttons sit at the bottom, within reach, the keypad
above or beside them, the text in the space left over. Text is fitted into its block later
(:mod:`kiosk.ui.render`), so this module deals only in rectangles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pygame import Rect

from kiosk.flow.screens import UiAction, UiInput
from kiosk.ui.layouts import Layout
from kiosk.ui.view import Button, View

#: The keypad, row by row: digits, and the correction key beside a double-width 0 (like a
#: USB numeric keypad's 0 key).
KEYPAD_ROWS: tuple[tuple[str, ...], ...] = (
    ("1", "2", "3"),
    ("4", "5", "6"),
    ("7", "8", "9"),
    ("0", "0", "erase"),
)


#: A lone action button wider than this takes half its row instead.
SINGLE_BUTTON_MAX_MM = 90.0


@dataclass(frozen=True)
class Key:
    rect: Rect
    input: UiInput


@dataclass(frozen=True)
class Placed:
    rect: Rect
    button: Button


@dataclass(frozen=True)
class Plan:
    header: Rect
    title: Rect
    code: Rect | None
    #: the icon and the paragraphs share this block; render places them once text is measured
    media: Rect | None
    dots: Rect | None
    keys: tuple[Key, ...]
    choices: tuple[Placed, ...]
    actions: tuple[Placed, ...]


def _code_width(layout: Layout) -> int:
    return round(layout.code_size * 4.6)


def _actions(
    layout: Layout, area: Rect, buttons: tuple[Button, ...], *, in_row: bool = False
) -> tuple[list[Placed], Rect]:
    """Place the action buttons at the bottom of ``area``; returns them and the space above.

    ``in_row`` puts them side by side even where the layout stacks them (under a keypad,
    where the height is for the keys and the text)."""
    if not buttons:
        return [], area.copy()
    gap, height = layout.gap, layout.button_height
    placed = []
    if layout.actions_in_row or in_row:
        n = len(buttons)
        row = Rect(area.x, area.bottom - height, area.width, height)
        if n == 1 and layout.mm(row.width, height)[0] > SINGLE_BUTTON_MAX_MM:
            # one button alone takes half a wide row, on the right where the eye ends
            row = Rect(row.right - row.width // 2, row.y, row.width // 2, height)
        width = (row.width - (n - 1) * gap) // n
        for i, button in enumerate(buttons):
            placed.append(Placed(Rect(row.x + i * (width + gap), row.y, width, height), button))
        top = row.y
    else:
        top = area.bottom
        for button in reversed(buttons):
            top -= height
            placed.insert(0, Placed(Rect(area.x, top, area.width, height), button))
            top -= gap
        top += gap
    above = Rect(area.x, area.y, area.width, max(0, top - gap - area.y))
    return placed, above


def _keypad(layout: Layout, origin: tuple[int, int]) -> list[Key]:
    x0, y0 = origin
    keys = []
    for r, row in enumerate(KEYPAD_ROWS):
        c = 0
        while c < len(row):
            name = row[c]
            span = 1
            while c + span < len(row) and row[c + span] == name:
                span += 1
            rect = Rect(
                x0 + c * (layout.key_width + layout.key_gap),
                y0 + r * (layout.key_height + layout.key_gap),
                span * layout.key_width + (span - 1) * layout.key_gap,
                layout.key_height,
            )
            action = UiInput(UiAction.ERASE) if name == "erase" else UiInput(UiAction.DIGIT, name)
            keys.append(Key(rect, action))
            c += span
    return keys


def keypad_size(layout: Layout) -> tuple[int, int]:
    columns = len(KEYPAD_ROWS[0])
    rows = len(KEYPAD_ROWS)
    return (
        columns * layout.key_width + (columns - 1) * layout.key_gap,
        rows * layout.key_height + (rows - 1) * layout.key_gap,
    )


def arrange(view: View, layout: Layout) -> Plan:
    """The rectangles of ``view`` on ``layout``."""
    m, gap = layout.margin, layout.gap
    header = Rect(0, 0, layout.width, layout.header_height)
    code = None
    title = Rect(m, 0, layout.width - 2 * m, layout.header_height)
    if view.code is not None:
        cw = _code_width(layout)
        code = Rect(layout.width - m - cw, 0, cw, layout.header_height)
        title.width -= cw + gap
    content = Rect(m, header.bottom + gap, layout.width - 2 * m, 0)
    content.height = layout.height - m - content.y

    keys: list[Key] = []
    dots = None
    if view.keypad:
        kw, kh = keypad_size(layout)
        if layout.keypad_beside:
            pad = Rect(content.right - kw, content.y + (content.height - kh) // 2, kw, kh)
            side = Rect(content.x, content.y, content.width - kw - 2 * gap, content.height)
            actions, above = _actions(layout, side, view.actions)
        else:
            actions, above = _actions(layout, content, view.actions, in_row=True)
            pad = Rect(above.centerx - kw // 2, above.bottom - kh, kw, kh)
            above.height = max(0, pad.y - gap - above.y)
        keys = _keypad(layout, pad.topleft)
        dots_height = layout.dot_diameter + gap
        dots = Rect(above.x, above.bottom - dots_height, above.width, dots_height)
        text = Rect(above.x, above.y, above.width, max(0, dots.y - above.y))
        return Plan(header, title, code, text, dots, tuple(keys), (), tuple(actions))

    actions, above = _actions(layout, content, view.actions)
    choices: list[Placed] = []
    if view.choices:
        columns = min(layout.choice_columns, len(view.choices))
        rows = math.ceil(len(view.choices) / columns)
        height = layout.button_height
        width = (above.width - (columns - 1) * gap) // columns
        grid_height = rows * height + (rows - 1) * gap
        # the grid goes right under the title, the actions stay at the bottom
        y0 = above.y + max(0, (above.height - grid_height) // 4)
        for i, button in enumerate(view.choices):
            r, c = divmod(i, columns)
            rect = Rect(above.x + c * (width + gap), y0 + r * (height + gap), width, height)
            choices.append(Placed(rect, button))
        above = Rect(above.x, y0 + grid_height + gap, above.width, 0)
    media: Rect | None = above if above.height > 0 else None
    return Plan(header, title, code, media, None, (), tuple(choices), tuple(actions))
