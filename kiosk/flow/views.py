"""What a state shows and implies: its screen, its lights, its timeout, the route of a visit
that ends there, whether a card is on the reader, whether its screen says staff were called.

Pure functions of a state (and the settings); the machine uses them on entering a state, the
tests to check every state has them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

from contract.challenge import Mode
from contract.notices import StaffCallReason
from kiosk.flow.notices import Notice
from kiosk.flow.screens import Screen, ScreenId
from kiosk.flow.settings import FlowSettings
from kiosk.flow.states import (
    CardSession,
    Checking,
    ChoosingCheck,
    Concluded,
    EnteringPin,
    ErrorNotice,
    FlowState,
    NeedsStaff,
    NoCardHelp,
    OfflineNotice,
    ReaderMissing,
    ReadingCard,
    RemovedEarly,
    ResultOk,
    StaffMode,
    TakeCard,
    VisualCheckWait,
)
from kiosk.hw.patterns import MAX_REMINDER_LEVEL
from kiosk.hw.reminder import next_sound_at
from kiosk.hw.signals import LightSignal

#: The card-left reminder level whose screen says staff were told ("職員にもお知らせしました").
STAFF_TOLD_LEVEL: Final = MAX_REMINDER_LEVEL


#: :class:`~kiosk.card.jpki.Token` values of phones (a phone cannot show a photo).
_PHONE_TOKENS: Final = frozenset({"android", "iphone"})


@dataclass(frozen=True)
class StaffCallView:
    """What a screen that says staff were called reports to the clinic server."""

    reason: StaffCallReason
    notice: Notice | None = None
    verification_id: str | None = None


def staff_call_of(state: FlowState) -> StaffCallView | None:
    """The staff call a state's screen announces, or None when it announces none.

    A visit's result stays the same call while the card waits on the reader; a card left
    after a result without a call becomes one at :data:`STAFF_TOLD_LEVEL`.
    """
    if isinstance(state, NoCardHelp):
        return StaffCallView("no_card", Notice.NO_CARD)
    if isinstance(state, ReaderMissing):
        return StaffCallView("reader_missing", Notice.READER_MISSING)
    if isinstance(state, OfflineNotice):
        return StaffCallView("server_unreachable", Notice.SERVER_UNREACHABLE)
    if isinstance(state, NeedsStaff | ErrorNotice):
        if not state.notice.needs_staff:
            return None
        reason: StaffCallReason = "patient" if state.notice is Notice.NO_CARD else "notice"
        return StaffCallView(reason, state.notice, state.verification_id or None)
    if isinstance(state, VisualCheckWait):
        facts = state.facts
        phone = facts is not None and facts.token in _PHONE_TOKENS
        if state.tries_left == 0:
            why = Notice.PIN_LOCKED
        elif state.tries_left is None or phone:
            why = Notice.NO_PIN
        else:
            why = Notice.PIN_AT_FLOOR
        return StaffCallView(
            "visual_check.phone" if phone else "visual_check", why, state.verification_id or None
        )
    if isinstance(state, TakeCard):
        result = staff_call_of(state.result) if state.result is not None else None
        if result is not None:
            return result
        if state.reminder_level >= STAFF_TOLD_LEVEL:
            return StaffCallView("card_left")
    return None


def screen_of(state: FlowState) -> Screen:
    """The screen a state shows: as little as the patient needs, no personal data."""
    screen = _screen(state)
    if staff_call_of(state) is not None:
        return replace(screen, visit=state.visit)
    return screen


def _screen(state: FlowState) -> Screen:
    base = Screen(state.screen_id, state.language)
    if isinstance(state, ChoosingCheck):
        return replace(
            base,
            tries_left=state.tries_left,
            pin_unavailable=state.pin_unavailable,
            wrong_pin=state.wrong_pin,
        )
    if isinstance(state, EnteringPin):
        return replace(
            base, tries_left=state.tries_left, digits_typed=state.digits, wrong_pin=state.wrong_pin
        )
    if isinstance(state, ResultOk):
        return replace(
            base,
            renew_certificate=state.renew_certificate,
            certificate_expiry=state.certificate_expiry,
            copay_percent=state.copay_percent,
        )
    if isinstance(state, NeedsStaff | ErrorNotice):
        return replace(base, notice=state.notice)
    if isinstance(state, TakeCard):
        return replace(base, reminder_level=state.reminder_level, notice=state.notice)
    notice = _FIXED_NOTICES.get(state.screen_id)
    if notice is not None:
        return replace(base, notice=notice)
    return base


_FIXED_NOTICES: Final[dict[ScreenId, Notice]] = {
    ScreenId.NO_CARD_HELP: Notice.NO_CARD,
    ScreenId.REMOVED_EARLY: Notice.CARD_REMOVED_EARLY,
    ScreenId.READER_MISSING: Notice.READER_MISSING,
    ScreenId.SERVER_UNREACHABLE: Notice.SERVER_UNREACHABLE,
}


def lights_of(state: FlowState) -> LightSignal:
    """Green eligible; amber staff or "place the card again" (blinking: visual check waiting);
    red error; blue ready/busy.

    A card left on the reader keeps the result's lamp until the first reminder, then calls in
    amber (never green: green means "eligible" from across the room)."""
    if isinstance(state, TakeCard):
        return state.signal if state.reminder_level == 0 else LightSignal.STAFF_NEEDED
    if isinstance(state, ReadingCard | Checking):
        return LightSignal.BUSY
    if isinstance(state, ChoosingCheck):
        return LightSignal.READY if state.pin_unavailable is None else LightSignal.STAFF_NEEDED
    if isinstance(state, VisualCheckWait):
        return LightSignal.VISUAL_CHECK_WAITING
    if isinstance(state, ResultOk):
        return LightSignal.ELIGIBLE
    if isinstance(state, NeedsStaff | ErrorNotice):
        return LightSignal.STAFF_NEEDED if state.notice.needs_staff else LightSignal.ERROR
    if isinstance(state, NoCardHelp | ReaderMissing | OfflineNotice):
        return LightSignal.STAFF_NEEDED
    if isinstance(state, RemovedEarly):  # amber, not red: place the card again
        return LightSignal.STAFF_NEEDED
    if isinstance(state, StaffMode):
        return LightSignal.OFF
    return LightSignal.READY  # Idle, ChoosingLanguage, EnteringPin


def timeout_of(state: FlowState, settings: FlowSettings) -> float:
    """Seconds until the state's timeout."""
    timeouts = settings.timeouts
    if isinstance(state, Concluded):
        if state.card_present:  # the first card-left reminder is due then
            return settings.reminders.remind_after_s[0]
        return timeouts.after_removal_s
    if isinstance(state, TakeCard):
        return next_sound_at(settings.reminders, state.elapsed_s) - state.elapsed_s
    return {
        ScreenId.IDLE: timeouts.idle_s,
        ScreenId.LANGUAGES: timeouts.languages_s,
        ScreenId.NO_CARD_HELP: timeouts.no_card_help_s,
        ScreenId.READING: timeouts.reading_s,
        ScreenId.CHOOSE_CHECK: timeouts.choose_check_s,
        ScreenId.PIN_ENTRY: timeouts.pin_entry_s,
        ScreenId.CHECKING: timeouts.checking_s,
        ScreenId.VISUAL_WAIT: timeouts.visual_wait_s,
        ScreenId.REMOVED_EARLY: timeouts.removed_early_s,
        ScreenId.READER_MISSING: timeouts.reader_missing_s,
        ScreenId.SERVER_UNREACHABLE: timeouts.server_unreachable_s,
        ScreenId.STAFF_MODE: timeouts.staff_mode_s,
    }[state.screen_id]


def route_of(state: FlowState, mode: Mode | None) -> str:
    """``ok``, ``staff`` or ``error``: how a patient's visit ended (population routes)."""
    if isinstance(state, ResultOk):
        return "staff" if mode == "visual" else "ok"
    if isinstance(state, ErrorNotice):
        return "error"
    return "staff"


def card_present(state: FlowState) -> bool:
    """Whether the state knows of a card on the reader."""
    if isinstance(state, CardSession | TakeCard):
        return True
    if isinstance(state, Concluded | StaffMode):
        return state.card_present
    return False
