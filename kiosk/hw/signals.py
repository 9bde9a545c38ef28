"""What the lights and the buzzer say, named by meaning; :mod:`kiosk.hw` turns them into pins.

The flow asks for a :class:`LightSignal` and a :class:`Sound`; it never knows which LED is on
which pin or how long a beep lasts.
"""

from __future__ import annotations

from enum import StrEnum


class LightSignal(StrEnum):
    READY = "ready"  # blue steady: place your card
    BUSY = "busy"  # blue blinking: reading, checking
    ELIGIBLE = "eligible"  # green
    STAFF_NEEDED = "staff_needed"  # amber steady
    VISUAL_CHECK_WAITING = "visual_check_waiting"  # amber blinking
    ERROR = "error"  # red
    OFF = "off"


class Sound(StrEnum):
    CARD_DETECTED = "card_detected"  # one short beep
    SUCCESS = "success"  # two rising beeps
    FAILURE = "failure"  # one long low beep
    KEY = "key"  # a tick for each PIN key
    REMINDER_1 = "reminder_1"  # card left behind, escalating
    REMINDER_2 = "reminder_2"
    REMINDER_3 = "reminder_3"
