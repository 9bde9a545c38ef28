"""The flow's states, one per screen the patient can see (their :class:`ScreenId`).

Every state is a frozen value: the patient's language, the generation of its timer, the card
session it belongs to, and what that screen needs (tries left, digits typed, the notice...).
The machine (:mod:`kiosk.flow.machine`) has one handler for each class in
:data:`STATE_TYPES`, and starts in the one state marked ``initial``: :class:`Idle`.

A state's recorded name (``flow.transition`` records, the outbox, the dashboard) is its
screen's id (:attr:`FlowState.name`), never its class name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

from contract.challenge import Mode
from kiosk.flow.events import CardFacts
from kiosk.flow.notices import Notice
from kiosk.flow.screens import (
    DEFAULT_LANGUAGE,
    CertificateExpiry,
    Language,
    PinUnavailable,
    ScreenId,
)
from kiosk.hw.signals import LightSignal


@dataclass(frozen=True, kw_only=True)
class FlowState:
    """What every state holds: the patient's language, the timer generation, the session."""

    screen_id: ClassVar[ScreenId]
    #: the machine starts in the one state class that sets this
    initial: ClassVar[bool] = False
    language: Language = DEFAULT_LANGUAGE
    #: generation of this state's timeout; an older TimerFired is ignored
    timer: int = 0
    #: the card session (counts card placements); worker events of another are ignored
    session: int = 0
    #: the number of the last staff call (counts calls); the screen shows the current one
    visit: int = 0

    @property
    def name(self) -> str:
        """The name in records and logs: the screen's id, stable across renames."""
        return self.screen_id.value


# --- before a card -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Idle(FlowState):
    screen_id = ScreenId.IDLE
    initial = True


@dataclass(frozen=True, kw_only=True)
class ChoosingLanguage(FlowState):
    screen_id = ScreenId.LANGUAGES


@dataclass(frozen=True, kw_only=True)
class NoCardHelp(FlowState):
    """No card or a 資格確認書: what to show at the desk; staff are called (amber)."""

    screen_id = ScreenId.NO_CARD_HELP


# --- a card session ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CardSession(FlowState):
    """A state in which a card is on the reader and being used."""

    facts: CardFacts | None = None
    #: tries left as last reported by the card
    tries_left: int | None = None
    #: wrong PINs typed in this session (a count, for the log)
    wrong_pins: int = 0
    #: the user certificate expires (or expired) within three months (read for the check)
    certificate_expiry: CertificateExpiry | None = None

    @property
    def visual_possible(self) -> bool:
        return self.facts is not None and self.facts.visual_possible


@dataclass(frozen=True, kw_only=True)
class ReadingCard(CardSession):
    screen_id = ScreenId.READING


@dataclass(frozen=True, kw_only=True)
class ChoosingCheck(CardSession):
    """PIN (default) or staff visual check; visual only when ``pin_unavailable`` is set."""

    screen_id = ScreenId.CHOOSE_CHECK
    pin_unavailable: PinUnavailable | None = None
    #: arrived here because the last PIN was wrong
    wrong_pin: bool = False


@dataclass(frozen=True, kw_only=True)
class EnteringPin(CardSession):
    screen_id = ScreenId.PIN_ENTRY
    #: digits typed into the current PIN entry (never the digits themselves)
    digits: int = 0
    wrong_pin: bool = False


@dataclass(frozen=True, kw_only=True)
class Checking(CardSession):
    """The card verifies and signs, the server answers."""

    screen_id = ScreenId.CHECKING
    mode: Mode = "pin"
    #: the PIN was sent and the card has not answered yet
    verifying: bool = False
    #: the one automatic retry with a fresh challenge was used
    retried: bool = False


@dataclass(frozen=True, kw_only=True)
class VisualCheckWait(CardSession):
    """Staff compare photo and face; they confirm with the button or on the dashboard."""

    screen_id = ScreenId.VISUAL_WAIT
    verification_id: str = ""
    #: a confirmation from the staff button is on its way
    confirming: bool = False
    #: how often staff were called again
    alerts: int = 0


# --- the outcome -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Concluded(FlowState):
    """A patient's outcome is on the screen; the card may still be on the reader."""

    card_present: bool = True
    #: the server's verification this outcome answers ("" when there was none)
    verification_id: str = ""


@dataclass(frozen=True, kw_only=True)
class ResultOk(Concluded):
    screen_id = ScreenId.RESULT_OK
    renew_certificate: bool = False
    certificate_expiry: CertificateExpiry | None = None
    #: the copay ratio in percent, only when the clinic shows it (``show_copay_ratio``)
    copay_percent: int | None = None


@dataclass(frozen=True, kw_only=True)
class NeedsStaff(Concluded):
    screen_id = ScreenId.NEEDS_STAFF
    notice: Notice = Notice.SERVER_ERROR


@dataclass(frozen=True, kw_only=True)
class ErrorNotice(Concluded):
    screen_id = ScreenId.ERROR
    notice: Notice = Notice.NOT_MY_NUMBER_CARD


@dataclass(frozen=True, kw_only=True)
class OfflineNotice(Concluded):
    """The clinic server could not be reached; recorded as ``server_unreachable``."""

    screen_id = ScreenId.SERVER_UNREACHABLE


@dataclass(frozen=True, kw_only=True)
class TakeCard(FlowState):
    """The card is still on the reader and nothing is left to do with it.

    The reminders follow the ``[card_left]`` schedule, counted from the result: the result's
    lamp keeps its colour and blinks faster at each level, and each level's sound repeats.
    """

    screen_id = ScreenId.TAKE_CARD
    reminder_level: int = 0
    #: seconds since the result (or since this state began when there was none)
    elapsed_s: float = 0.0
    #: the result's light, kept while reminding (blue when there was no result)
    signal: LightSignal = LightSignal.READY
    #: the result's notice, still on the screen for the patient to quote at the desk
    notice: Notice | None = None
    #: the result, shown again for a moment once the card is taken
    result: Concluded | None = None


@dataclass(frozen=True, kw_only=True)
class RemovedEarly(FlowState):
    screen_id = ScreenId.REMOVED_EARLY


# --- the kiosk itself --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ReaderMissing(FlowState):
    screen_id = ScreenId.READER_MISSING


@dataclass(frozen=True, kw_only=True)
class StaffMode(FlowState):
    screen_id = ScreenId.STAFF_MODE
    card_present: bool = False


#: Every state class, one per screen.
STATE_TYPES: Final[tuple[type[FlowState], ...]] = (
    Idle,
    ChoosingLanguage,
    NoCardHelp,
    ReadingCard,
    ChoosingCheck,
    EnteringPin,
    Checking,
    VisualCheckWait,
    ResultOk,
    NeedsStaff,
    ErrorNotice,
    TakeCard,
    RemovedEarly,
    ReaderMissing,
    OfflineNotice,
    StaffMode,
)
