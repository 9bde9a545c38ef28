"""The handlers of the states outside a card session.

Before a card: :class:`Idle`, :class:`ChoosingLanguage`, :class:`NoCardHelp`. After it: the
outcome (:class:`Concluded`: the result stays readable, then the card-left reminders of
:class:`TakeCard`), or :class:`RemovedEarly`. And the kiosk's own: :class:`ReaderMissing` and
:class:`StaffMode` (a long press on the staff button, from any state).
"""

from __future__ import annotations

from dataclasses import replace

from kiosk.flow.effects import CheckReader, PlaySound, Record
from kiosk.flow.events import (
    CardInserted,
    CardLifted,
    Event,
    Pressed,
    ReaderBack,
    StaffButtonPressed,
    TimerFired,
)
from kiosk.flow.moves import Moves, Step
from kiosk.flow.screens import UiAction
from kiosk.flow.states import (
    ChoosingLanguage,
    Concluded,
    FlowState,
    Idle,
    NoCardHelp,
    StaffMode,
    TakeCard,
)
from kiosk.flow.views import card_present, lights_of, screen_of
from kiosk.hw.patterns import REMINDER_SOUNDS
from kiosk.hw.reminder import level_at, next_sound_at

# --- before a card -----------------------------------------------------------------------------


def on_idle(moves: Moves, state: FlowState, event: Event) -> Step:
    if isinstance(event, CardInserted):
        return moves.reading(state, keep_language=True)
    if isinstance(event, Pressed):
        if event.action is UiAction.NO_CARD:
            return moves.go(
                state,
                NoCardHelp(language=state.language, session=state.session),
                "ui.no_card",
                Record("staff.action", (("action", "called_no_card"),)),
            )
        if event.action is UiAction.OPEN_LANGUAGES:
            return moves.go(
                state,
                ChoosingLanguage(language=state.language, session=state.session),
                "ui.languages",
            )
        if event.action is UiAction.SET_LANGUAGE and event.language is not None:
            return moves.go(state, replace(state, language=event.language), "ui.language")
    if isinstance(event, TimerFired):
        return moves.idle(state, "timer.idle", CheckReader())
    return state, ()


def on_languages(moves: Moves, state: FlowState, event: Event) -> Step:
    if isinstance(event, CardInserted):
        return moves.reading(state, keep_language=True)
    if isinstance(event, Pressed):
        if event.action is UiAction.SET_LANGUAGE and event.language is not None:
            return moves.go(
                state, Idle(language=event.language, session=state.session), "ui.language"
            )
        if event.action is UiAction.CANCEL:
            return moves.go(
                state, Idle(language=state.language, session=state.session), "ui.cancel"
            )
    if isinstance(event, TimerFired):
        return moves.idle(state, "timer.languages")
    return state, ()


def on_no_card_help(moves: Moves, state: FlowState, event: Event) -> Step:
    if isinstance(event, CardInserted):
        return moves.reading(state, keep_language=True)
    if isinstance(event, Pressed) and event.action in (UiAction.DONE, UiAction.CANCEL):
        return moves.idle(state, "ui.done")
    if isinstance(event, StaffButtonPressed):
        return moves.idle(
            state, "staff.button", Record("staff.action", (("action", "acknowledged"),))
        )
    if isinstance(event, TimerFired):
        return moves.idle(state, "timer.no_card_help")
    return state, ()


# --- after the card ----------------------------------------------------------------------------


def on_concluded(moves: Moves, state: FlowState, event: Event) -> Step:
    assert isinstance(state, Concluded)
    if isinstance(event, CardLifted) and state.card_present:
        return moves.go(
            state,
            replace(state, card_present=False),
            "card.removed",
            Record("card.removed", (("during", state.name),)),
        )
    if isinstance(event, CardInserted) and not state.card_present:
        return moves.reading(state, keep_language=False)
    done = isinstance(event, Pressed) and event.action is UiAction.DONE
    if done or isinstance(event, TimerFired):
        reason = "ui.done" if done else f"timer.{state.name}"
        if not state.card_present:
            return moves.idle(state, reason)
        waiting = TakeCard(
            language=state.language,
            session=state.session,
            signal=lights_of(state),
            notice=screen_of(state).notice,
            result=replace(state, card_present=False),
        )
        if done:  # the reminders start from now
            return moves.go(state, waiting, reason, end=True)
        return _remind(moves, state, waiting, reason)
    return state, ()


def on_take_card(moves: Moves, state: FlowState, event: Event) -> Step:
    assert isinstance(state, TakeCard)
    if isinstance(event, CardLifted):
        record = Record("card.removed", (("during", state.name),))
        if state.result is not None:  # the result again, readable for a moment
            return moves.go(state, state.result, "card.removed", record)
        return moves.idle(state, "card.removed", record)
    if isinstance(event, TimerFired):
        return _remind(moves, state, state, "timer.take_card")
    return state, ()


def _remind(moves: Moves, state: FlowState, waiting: TakeCard, reason: str) -> Step:
    """The next card-left reminder of the schedule: its level, lamp blinking and sound."""
    schedule = moves.settings.reminders
    elapsed = next_sound_at(schedule, waiting.elapsed_s)
    level = level_at(schedule, elapsed)
    return moves.go(
        state,
        replace(waiting, elapsed_s=elapsed, reminder_level=level),
        reason,
        Record("card.left", (("reminder_level", level),)),
        PlaySound(REMINDER_SOUNDS[level]),
        end=True,
    )


def on_removed_early(moves: Moves, state: FlowState, event: Event) -> Step:
    if isinstance(event, CardInserted):
        return moves.reading(state, keep_language=True)
    if isinstance(event, Pressed) and event.action in (UiAction.DONE, UiAction.CANCEL):
        return moves.idle(state, "ui.done")
    if isinstance(event, TimerFired):
        return moves.idle(state, "timer.removed_early")
    return state, ()


# --- the kiosk itself: the reader, staff mode --------------------------------------------------


def on_reader_missing(moves: Moves, state: FlowState, event: Event) -> Step:
    if isinstance(event, ReaderBack):
        return moves.idle(state, "reader.back", Record("reader.back"))
    if isinstance(event, CardInserted):  # a card can only arrive on a reader that is there
        return moves.reading(state, keep_language=False)
    if isinstance(event, TimerFired):
        return moves.go(
            state,
            state,
            "timer.reader_missing",
            Record("reader.still_missing"),
            CheckReader(),
        )
    return state, ()


def on_staff_mode(moves: Moves, state: FlowState, event: Event) -> Step:
    assert isinstance(state, StaffMode)
    if isinstance(event, CardInserted | CardLifted):
        return replace(state, card_present=isinstance(event, CardInserted)), ()
    exit_pressed = isinstance(event, Pressed) and event.action is UiAction.STAFF_EXIT
    if exit_pressed or isinstance(event, TimerFired):
        return _leave_staff_mode(moves, state)
    return state, ()


def staff_long_press(moves: Moves, state: FlowState) -> Step:
    """A long press on the staff button, in any state: staff mode opens, or closes."""
    if isinstance(state, StaffMode):
        return _leave_staff_mode(moves, state)
    return moves.go(
        state,
        StaffMode(card_present=card_present(state), session=state.session),
        "staff.long_press",
        Record("staff.action", (("action", "staff_mode_open"),)),
        end=True,
    )


def _leave_staff_mode(moves: Moves, state: StaffMode) -> Step:
    record = Record("staff.action", (("action", "staff_mode_exit"),))
    if state.card_present:
        return moves.go(state, TakeCard(session=state.session), "staff.exit", record)
    return moves.idle(state, "staff.exit", record, CheckReader())
