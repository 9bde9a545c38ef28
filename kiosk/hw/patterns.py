"""What each :class:`LightSignal` and :class:`Sound` looks and sounds like: pure tables.

No pins here. :mod:`kiosk.hw.devices` plays these patterns on gpiozero devices; the tests
check the tables themselves (one lamp per meaning, distinct and short sounds, reminders that
escalate) without any hardware, and check on mock pins that the devices play them as written.

The buzzer is an *active* buzzer (a fixed tone): sounds differ by length and count of beeps,
not by pitch.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kiosk.hw.signals import LightSignal, Sound


class Lamp(StrEnum):
    """The four status LEDs, named by colour."""

    GREEN = "green"
    AMBER = "amber"
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True)
class LightPattern:
    """One lamp lit steadily (``on_s`` None) or blinking; no lamp for :attr:`LightSignal.OFF`."""

    lamp: Lamp | None
    on_s: float | None = None
    off_s: float | None = None

    @property
    def steady(self) -> bool:
        return self.on_s is None


#: Blinking of a signal that is itself a blink: calm, about once a second.
BUSY_BLINK_S = (0.25, 0.25)
VISUAL_CHECK_BLINK_S = (0.5, 0.5)

#: The meaning of each signal: one lamp at a time.
SIGNAL_PATTERNS: dict[LightSignal, LightPattern] = {
    LightSignal.READY: LightPattern(Lamp.BLUE),
    LightSignal.BUSY: LightPattern(Lamp.BLUE, *BUSY_BLINK_S),
    LightSignal.ELIGIBLE: LightPattern(Lamp.GREEN),
    LightSignal.STAFF_NEEDED: LightPattern(Lamp.AMBER),
    LightSignal.VISUAL_CHECK_WAITING: LightPattern(Lamp.AMBER, *VISUAL_CHECK_BLINK_S),
    LightSignal.ERROR: LightPattern(Lamp.RED),
    LightSignal.OFF: LightPattern(None),
}

#: Card left on the reader: the amber lamp blinks, faster at each reminder level. Amber
#: whatever the result was: green means "eligible" from across the room, and from the level
#: that says so, staff were told.
REMINDER_LAMP = Lamp.AMBER
REMINDER_BLINK_S: dict[int, tuple[float, float]] = {
    1: (0.4, 0.4),
    2: (0.2, 0.2),
    3: (0.1, 0.1),
}

#: The highest reminder level (:class:`kiosk.hw.reminder.CardLeftReminder` counts up to it).
MAX_REMINDER_LEVEL = max(REMINDER_BLINK_S)


def light_pattern(signal: LightSignal, reminder: int = 0) -> LightPattern:
    """The lamp and blinking for ``signal``, at card-left ``reminder`` level 0 (none) to 3."""
    if not 0 <= reminder <= MAX_REMINDER_LEVEL:
        raise ValueError(f"reminder level {reminder} is not 0..{MAX_REMINDER_LEVEL}")
    base = SIGNAL_PATTERNS[signal]
    if reminder == 0 or base.lamp is None:
        return base
    on_s, off_s = REMINDER_BLINK_S[reminder]
    return LightPattern(REMINDER_LAMP, on_s, off_s)


@dataclass(frozen=True)
class BeepPattern:
    """``n`` beeps of ``on_s`` seconds with ``off_s`` seconds of silence between them."""

    on_s: float
    off_s: float
    n: int

    @property
    def duration_s(self) -> float:
        return self.n * self.on_s + (self.n - 1) * self.off_s

    @property
    def sounding_s(self) -> float:
        """How long the buzzer sounds in all."""
        return self.n * self.on_s


SOUND_PATTERNS: dict[Sound, BeepPattern] = {
    Sound.KEY: BeepPattern(0.02, 0.0, 1),  # a tick
    Sound.CARD_DETECTED: BeepPattern(0.08, 0.0, 1),  # one short beep
    Sound.SUCCESS: BeepPattern(0.08, 0.08, 2),  # two short beeps
    Sound.FAILURE: BeepPattern(0.6, 0.0, 1),  # one long beep
    Sound.REMINDER_1: BeepPattern(0.15, 0.15, 2),
    Sound.REMINDER_2: BeepPattern(0.2, 0.1, 3),
    Sound.REMINDER_3: BeepPattern(0.3, 0.1, 5),
}

REMINDER_SOUNDS: dict[int, Sound] = {
    1: Sound.REMINDER_1,
    2: Sound.REMINDER_2,
    3: Sound.REMINDER_3,
}
