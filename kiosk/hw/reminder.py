"""The card left on the reader after the result: when to remind, and how insistently.

Pure logic with no clock and no thread: the runner tells it how many seconds have passed
since the result was shown (it keeps the time; timeouts are events), plays the sound it is
given, shows the lights at the level it is given, and sets its next timer to
:attr:`ReminderStep.next_in_s`::

    reminder = CardLeftReminder(schedule)             # a new one (or reset()) per result
    step = reminder.check(elapsed_s)
    lights.show(signal, reminder=step.level)
    if step.sound is not None:
        buzzer.play(step.sound)
    timers.after(step.next_in_s, CardLeftTick)         # whatever the runner's timers are

A runner that wakes late does not get a burst of catch-up sounds: one sound at most per check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kiosk.hw.config import ReminderSchedule
from kiosk.hw.patterns import REMINDER_SOUNDS
from kiosk.hw.signals import Sound


@dataclass(frozen=True)
class ReminderStep:
    #: 0 (no reminder yet) to 3
    level: int
    #: the sound to play now, or None
    sound: Sound | None
    #: seconds from now until the next sound is due
    next_in_s: float


def level_at(schedule: ReminderSchedule, elapsed_s: float) -> int:
    """The reminder level ``elapsed_s`` seconds after the result."""
    return sum(1 for start in schedule.remind_after_s if elapsed_s >= start)


def _level_window(schedule: ReminderSchedule, level: int) -> tuple[float, float]:
    starts = schedule.remind_after_s
    end = starts[level] if level < len(starts) else math.inf
    return starts[level - 1], end


def sounds_due(schedule: ReminderSchedule, elapsed_s: float) -> int:
    """How many reminder sounds are scheduled at or before ``elapsed_s`` (a running count)."""
    count = 0
    for level in range(1, len(schedule.remind_after_s) + 1):
        start, end = _level_window(schedule, level)
        if elapsed_s < start:
            break
        last = min(elapsed_s, end)
        # sounds at start + k * repeat for k >= 0, at or before `last` and before `end`
        k_max = math.floor((last - start) / schedule.repeat_s + 1e-9)
        if start + k_max * schedule.repeat_s >= end:
            k_max -= 1
        count += k_max + 1
    return count


def next_sound_at(schedule: ReminderSchedule, elapsed_s: float) -> float:
    """The first time strictly after ``elapsed_s`` at which a reminder sound is due."""
    for level in range(1, len(schedule.remind_after_s) + 1):
        start, end = _level_window(schedule, level)
        if elapsed_s < start:
            return start
        k = math.floor((elapsed_s - start) / schedule.repeat_s + 1e-9) + 1
        candidate = start + k * schedule.repeat_s
        if candidate < end:
            return candidate
    raise AssertionError("the last level repeats forever")  # pragma: no cover


class CardLeftReminder:
    """Counts the reminder sounds already given for one result; see the module docstring."""

    def __init__(self, schedule: ReminderSchedule | None = None) -> None:
        self.schedule = schedule or ReminderSchedule()
        self._played = 0

    def reset(self) -> None:
        """A new result: start counting again."""
        self._played = 0

    def check(self, elapsed_s: float) -> ReminderStep:
        """The level, the sound due now (if any) and when to check again."""
        level = level_at(self.schedule, elapsed_s)
        due = sounds_due(self.schedule, elapsed_s)
        sound = None
        if due > self._played:
            self._played = due
            sound = REMINDER_SOUNDS[level]
        next_in = next_sound_at(self.schedule, elapsed_s) - elapsed_s
        return ReminderStep(level, sound, next_in)
