"""The two screens the kiosk supports, as measures for the layout engine.

Physical sizes are the displays' active areas, so touch targets and type are set in
millimetres and land on whole pixels for each panel:

* Raspberry Pi Touch Display (7", 800x480, landscape): 154.08 x 85.92 mm, so 5.19 px/mm
  across and 5.59 px/mm down (its pixels are not square).
* Raspberry Pi Touch Display 2 (7", 720x1280, portrait): 88 x 155 mm, 8.18 and 8.26 px/mm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from contract.errors import ConfigError
from kiosk.ui.config import LayoutName

#: The smallest touch target, each way.
MIN_TARGET_MM = 15.0


@dataclass(frozen=True)
class Layout:
    name: LayoutName
    width: int
    height: int
    px_per_mm_x: float
    px_per_mm_y: float
    #: space around the content and between blocks
    margin: int
    gap: int
    #: the coloured title band
    header_height: int
    #: type sizes (px): preferred and smallest allowed before the text counts as overflowing
    title_size: int
    title_min: int
    body_size: int
    body_min: int
    button_size: int
    button_min: int
    key_size: int
    code_size: int
    #: blocks
    button_height: int
    icon_size: int
    key_width: int
    key_height: int
    key_gap: int
    dot_diameter: int
    choice_columns: int
    #: arrangement: landscape puts the keypad and the icon beside the text and the buttons in a
    #: row; portrait stacks them
    keypad_beside: bool
    icon_beside: bool
    actions_in_row: bool

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)

    @property
    def min_target(self) -> tuple[int, int]:
        """The smallest touch target in pixels (width, height): 15 mm each way."""
        return (
            math.ceil(MIN_TARGET_MM * self.px_per_mm_x),
            math.ceil(MIN_TARGET_MM * self.px_per_mm_y),
        )

    def mm(self, width_px: int, height_px: int) -> tuple[float, float]:
        """A pixel size in millimetres on this panel."""
        return (width_px / self.px_per_mm_x, height_px / self.px_per_mm_y)


LANDSCAPE = Layout(
    name="landscape",
    width=800,
    height=480,
    px_per_mm_x=800 / 154.08,
    px_per_mm_y=480 / 85.92,
    margin=20,
    gap=12,
    header_height=84,
    title_size=34,
    title_min=24,
    body_size=27,
    body_min=21,
    button_size=27,
    button_min=20,
    key_size=38,
    code_size=24,
    button_height=90,
    icon_size=148,
    key_width=100,
    key_height=86,
    key_gap=10,
    dot_diameter=30,
    choice_columns=3,
    keypad_beside=True,
    icon_beside=True,
    actions_in_row=True,
)

PORTRAIT = Layout(
    name="portrait",
    width=720,
    height=1280,
    px_per_mm_x=720 / 88.0,
    px_per_mm_y=1280 / 155.0,
    margin=32,
    gap=24,
    header_height=180,
    title_size=52,
    title_min=38,
    body_size=42,
    body_min=32,
    button_size=40,
    button_min=30,
    key_size=58,
    code_size=34,
    button_height=128,
    icon_size=230,
    key_width=204,
    key_height=124,
    key_gap=18,
    dot_diameter=46,
    choice_columns=2,
    keypad_beside=False,
    icon_beside=False,
    actions_in_row=False,
)

LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in (LANDSCAPE, PORTRAIT)}


def layout_named(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ConfigError(f"[display] layout must be one of {', '.join(LAYOUTS)}") from None
