"""What the machine is told: the events, and the facts the workers report in them.

The runner turns everything that happens into one of these: the card on the reader, a worker's
result, a touch or a key, the staff button, a timer. Results from workers carry the card
session they belong to (:data:`SESSION_EVENTS`); the machine ignores those of an earlier card.
A key press never carries a PIN digit: only that a digit was pressed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, TypeAlias

from kiosk.flow.screens import CertificateExpiry, Language, UiAction

# --- facts the workers report ------------------------------------------------------------------


@dataclass(frozen=True)
class CardFacts:
    """What the kiosk learnt from a card without a PIN."""

    #: ``mynumber_card``, ``android``, ``iphone`` (a :class:`~kiosk.card.jpki.Token` value)
    token: str
    #: tries left on the user-authentication PIN; 0 locked; None: the card has no PIN
    tries_left: int | None
    #: staff can compare a card photo with the patient (a My Number card, not a phone)
    visual_possible: bool
    #: the card session already reports the PIN as verified (an iPhone after Face ID or
    #: Touch ID answered the empty VERIFY with 9000): the phone signs without a PIN pad
    pin_verified: bool = False


@dataclass(frozen=True)
class Answer:
    """The clinic server's answer about one verification (no personal data)."""

    verification_id: str
    awaiting_staff: bool
    #: ``eligible``, ``eligible.renew_certificate``, ``retry``, ``wait_staff``, ``see_staff.*``
    patient_message: str
    reason_code: str
    validity_code: int | None = None
    #: the patient's copay in percent (InsuredPartialContributionRatio), when the answer has one
    copay_percent: int | None = None


# --- the card and the reader -------------------------------------------------------------------


@dataclass(frozen=True)
class CardInserted:
    """A card arrived on the kiosk's reader."""


@dataclass(frozen=True)
class CardLifted:
    """The card (or phone) was lifted off the kiosk's reader."""


@dataclass(frozen=True)
class ReaderLost:
    """The reader was unplugged, or pcscd went away."""

    code: str = "card.reader_gone"


@dataclass(frozen=True)
class ReaderBack:
    """The reader is there (again)."""


# --- results of the workers, each for one card session -----------------------------------------


@dataclass(frozen=True)
class CardRead:
    session: int
    facts: CardFacts


@dataclass(frozen=True)
class CardFailed:
    """A card operation failed; ``code`` is the :class:`~kiosk.errors.KioskError` code."""

    session: int
    code: str


@dataclass(frozen=True)
class PinAccepted:
    session: int


@dataclass(frozen=True)
class PinWrong:
    """The card refused the PIN; ``tries_left`` 0 means that try locked it."""

    session: int
    tries_left: int


@dataclass(frozen=True)
class ServerAnswered:
    session: int
    answer: Answer


@dataclass(frozen=True)
class ServerFailed:
    """A request failed: ``unreachable`` it never completed; else the server refused it."""

    session: int
    code: str
    unreachable: bool


@dataclass(frozen=True)
class ConfirmRefused:
    """The server refused the staff button's confirmation (the clinic confirms visual checks
    on the dashboard only, or this kiosk's button is over its hourly rate): the check stays
    with staff, who confirm on the dashboard."""

    session: int


# --- people and time ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pressed:
    """A touch or key; a DIGIT never carries its value here (the runner keeps it)."""

    action: UiAction
    language: Language | None = None


@dataclass(frozen=True)
class StaffButtonPressed:
    """The physical staff button: a short press confirms a visual check, a long one opens
    staff mode."""

    long: bool = False


@dataclass(frozen=True)
class CertificateDates:
    """The user certificate was read for the check: its expiry, when it is within three
    months either side of today (else None). Only its notAfter is looked at."""

    session: int
    expiry: CertificateExpiry | None


@dataclass(frozen=True)
class TimerFired:
    generation: int


Event: TypeAlias = (
    CardInserted
    | CardLifted
    | ReaderLost
    | ReaderBack
    | CardRead
    | CardFailed
    | PinAccepted
    | PinWrong
    | ServerAnswered
    | ServerFailed
    | ConfirmRefused
    | CertificateDates
    | Pressed
    | StaffButtonPressed
    | TimerFired
)

#: The events that carry the card session they belong to.
SESSION_EVENTS: Final = (
    CardRead,
    CardFailed,
    PinAccepted,
    PinWrong,
    ServerAnswered,
    ServerFailed,
    ConfirmRefused,
    CertificateDates,
)
