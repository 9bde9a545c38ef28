"""Colours: high contrast (WCAG AAA, 7:1 or more for every text), one palette per tone.

The tone of a screen matches the status light the staff see: blue for ready and busy, green
for eligible, amber when someone at the desk takes over, red when the card cannot be used.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

RGB = tuple[int, int, int]

#: WCAG 2 level AAA for normal-size text.
AAA_CONTRAST = 7.0


def hex_rgb(value: str) -> RGB:
    value = value.lstrip("#")
    return (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))


def relative_luminance(color: RGB) -> float:
    """WCAG 2 relative luminance of an sRGB colour."""

    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = color
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast_ratio(a: RGB, b: RGB) -> float:
    """WCAG 2 contrast ratio, 1..21."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


class Tone(StrEnum):
    READY = "ready"  # blue: place your card, choose, type
    BUSY = "busy"  # blue: reading, checking
    SUCCESS = "success"  # green: eligible
    STAFF = "staff"  # amber: someone at the desk takes over
    ERROR = "error"  # red: the card cannot be used
    STAFF_MODE = "staff_mode"  # slate: for staff only


@dataclass(frozen=True)
class Palette:
    band: RGB  # the title band
    band_text: RGB
    accent: RGB  # icons and outlines in the tone's colour


INK = hex_rgb("#1B1B1B")  # body text
PAGE = hex_rgb("#FAF8F3")  # a warm white, easier on the eyes than pure white
WHITE = hex_rgb("#FFFFFF")
BLUE = hex_rgb("#0B3C8C")
GREEN = hex_rgb("#075E31")
AMBER = hex_rgb("#F2A900")
RED = hex_rgb("#9B1C1C")
SLATE = hex_rgb("#2B2F36")

PALETTES: dict[Tone, Palette] = {
    Tone.READY: Palette(band=BLUE, band_text=WHITE, accent=BLUE),
    Tone.BUSY: Palette(band=BLUE, band_text=WHITE, accent=BLUE),
    Tone.SUCCESS: Palette(band=GREEN, band_text=WHITE, accent=GREEN),
    Tone.STAFF: Palette(band=AMBER, band_text=INK, accent=hex_rgb("#B07800")),
    Tone.ERROR: Palette(band=RED, band_text=WHITE, accent=RED),
    Tone.STAFF_MODE: Palette(band=SLATE, band_text=WHITE, accent=SLATE),
}

# Buttons and keys
PRIMARY_FILL = BLUE
PRIMARY_TEXT = WHITE
SECONDARY_FILL = WHITE
SECONDARY_TEXT = BLUE
SECONDARY_EDGE = BLUE
SELECTED_FILL = hex_rgb("#E8EEF7")  # the language in use, in the chooser
KEY_FILL = hex_rgb("#E8EEF7")
KEY_TEXT = INK
KEY_EDGE = hex_rgb("#5A6B85")
ERASE_FILL = hex_rgb("#FFE28A")  # the yellow correction key of Japanese ATMs
ERASE_TEXT = INK
BADGE_FILL = WHITE  # the notice code on the band

# Paragraph boxes
ALERT_FILL = hex_rgb("#FDECEC")
ALERT_TEXT = hex_rgb("#7A0E0E")
ALERT_EDGE = RED
NOTE_FILL = hex_rgb("#FFF3CD")
NOTE_TEXT = INK
NOTE_EDGE = hex_rgb("#B07800")

# PIN dots
DOT_FILLED = BLUE
DOT_EMPTY = hex_rgb("#8A97AD")

SHADOW = hex_rgb("#D9D4C7")
