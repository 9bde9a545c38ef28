"""The flow's settings: the PIN floor, each state's timeout and the card-left reminders.

They come from the kiosk's configuration file (:mod:`kiosk.config`: ``[timeouts]``,
``[card_left]``, ``[result]`` and the PIN policy's floor) and are all the machine knows of the
outside world.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from kiosk.hw.config import ReminderSchedule


@dataclass(frozen=True)
class FlowTimeouts:
    """Seconds each state waits before its timeout (the ``[timeouts]`` section)."""

    #: the idle screen is redrawn and the language reset to Japanese
    idle_s: float = 300.0
    languages_s: float = 30.0
    no_card_help_s: float = 60.0
    #: the card must answer by then (it normally takes well under a second)
    reading_s: float = 10.0
    choose_check_s: float = 60.0
    #: since the last key: a patient who walks away leaves no PIN behind
    pin_entry_s: float = 30.0
    checking_s: float = 30.0
    #: waiting for staff: each timeout calls them again (a sound), the wait goes on
    visual_wait_s: float = 60.0
    #: a result stays readable this long after the card left (with the card still on the
    #: reader, the ``[card_left]`` reminder schedule takes over: :class:`ReminderSchedule`)
    after_removal_s: float = 6.0
    removed_early_s: float = 8.0
    #: the reader is looked for again
    reader_missing_s: float = 30.0
    server_unreachable_s: float = 60.0
    staff_mode_s: float = 120.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"timeout {item.name} must be a positive number of seconds")


@dataclass(frozen=True)
class FlowSettings:
    #: fewest tries left for the kiosk to ask for a PIN at all (``PinPolicy.floor``)
    pin_floor: int = 2
    timeouts: FlowTimeouts = field(default_factory=FlowTimeouts)
    #: when a card left on the reader after the result is called out (``[card_left]``)
    reminders: ReminderSchedule = field(default_factory=ReminderSchedule)
    #: the result screen shows the patient's copay ratio (``[result] show_copay_ratio``); off
    #: unless the clinic turns it on
    show_copay_ratio: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.pin_floor <= 3:
            raise ValueError(f"the PIN floor must be 1..3, not {self.pin_floor}")
