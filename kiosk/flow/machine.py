"""The verification flow as a pure state machine: ``step(state, event) -> (state, effects)``.

Nothing here does I/O, reads a clock or starts a thread. The runner (:mod:`kiosk.flow.runner`)
executes the effects - the screen, the lights, the buzzer, the card, the clinic server, the
outbox, a timer - and feeds what happened back in as events. Timeouts are events too: every
state asks for one timer when it is entered (:class:`~kiosk.flow.effects.StartTimer`), and a
:class:`~kiosk.flow.events.TimerFired` of an older generation is ignored.

The states, by what the patient sees (their :class:`~kiosk.flow.screens.ScreenId`)::

    Idle ─ language ─▶ ChoosingLanguage          Idle ─ no card ─▶ NoCardHelp (staff called)
      │ card placed
      ▼
    ReadingCard ─▶ EnteringPin ─ 4th digit ─▶ Checking ─▶ ResultOk / NeedsStaff / ErrorNotice
      │   (PIN by default)  │ back / wrong PIN at the floor           │ card left on the reader
      │                     ▼                                        ▼
      └─ PIN locked, at the floor, no PIN ─▶ ChoosingCheck ─ visual ─▶ Checking ─▶ VisualCheckWait
                                                                          (staff confirm)
    lifted before the end ─▶ RemovedEarly ─▶ Idle      TakeCard (reminders escalate) ─▶ Idle
    ReaderMissing, OfflineNotice, StaffMode (long press on the staff button)

Where each part lives:

* :mod:`~kiosk.flow.settings` the PIN floor, the timeouts, the card-left reminders;
* :mod:`~kiosk.flow.events`, :mod:`~kiosk.flow.effects`, :mod:`~kiosk.flow.states` what goes
  in, what comes out, where the machine is;
* :mod:`~kiosk.flow.views` the screen, lights and timeout of each state;
* :mod:`~kiosk.flow.moves` entering a state, concluding a visit; the handlers, one per state,
  in :mod:`~kiosk.flow.card_session` and :mod:`~kiosk.flow.outside_session`;
* here: the table of handlers, checked when the class is defined, and the rules that hold in
  every state (stale events, a lost reader, a long press on the staff button).

Rules the machine keeps (and its tests check):

* The machine never sees a PIN digit: a key press arrives as ``Pressed(DIGIT)`` without its
  value; the runner keeps the digit and types it into the card session's ``PinEntry`` when
  the machine answers ``AcceptDigit``. The machine only counts digits.
* ``VerifyPin`` is emitted only on the fourth digit of the current PIN entry, and only when the
  tries left are at or above the policy floor. A server ``retry`` answer re-signs a fresh
  challenge (``SignAndSend``) once; the PIN is never sent again.
* Every state has a timeout; every state leads back to :class:`Idle`; a card lifted at any
  moment ends in a clear message and then :class:`Idle`.
* Leaving a card session for anything else emits ``EndSession``: the runner clears the PIN
  entry and drops the certificate, the challenge and the result.
* Results from workers carry the session they belong to; those of an earlier card are
  ignored. The language goes back to Japanese after every patient.
* Everything worth keeping goes to the outbox through ``Record`` effects: transitions with a
  reason code, card events, wrong-PIN counts (never a PIN), staff actions, the outcome summary
  (notice number, validity code) - never personal data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import ClassVar, TypeAlias

from kiosk.errors import FlowDefinitionError
from kiosk.flow import card_session, outside_session
from kiosk.flow.events import (
    SESSION_EVENTS,
    CertificateDates,
    Event,
    ReaderLost,
    StaffButtonPressed,
    TimerFired,
)
from kiosk.flow.moves import Moves, Step
from kiosk.flow.settings import FlowSettings
from kiosk.flow.states import (
    STATE_TYPES,
    CardSession,
    Checking,
    ChoosingCheck,
    ChoosingLanguage,
    EnteringPin,
    ErrorNotice,
    FlowState,
    Idle,
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

#: What an event does in one state: the next state and the effects.
Handler: TypeAlias = Callable[[Moves, FlowState, Event], Step]


def check_table(
    machine: str, states: Iterable[type[FlowState]], handlers: Mapping[type[FlowState], Handler]
) -> type[FlowState]:
    """The one initial state of a well-defined table; else :class:`FlowDefinitionError`.

    Well defined: every state is a concrete state class (it has a screen), listed once, with a
    screen of its own (its recorded name); exactly one of them is initial; every state has a
    handler and every handler belongs to one of the states.
    """
    listed = tuple(states)
    problems: list[str] = []
    seen: set[type[FlowState]] = set()
    screens: dict[object, type[FlowState]] = {}
    for state in listed:
        if not (isinstance(state, type) and issubclass(state, FlowState)):
            problems.append(f"{state!r} is not a state class")
            continue
        if state in seen:
            problems.append(f"{state.__name__} is listed twice")
            continue
        seen.add(state)
        screen = getattr(state, "screen_id", None)
        if screen is None:
            problems.append(f"{state.__name__} is not a concrete state (it has no screen)")
        elif screen in screens:
            problems.append(f"{screens[screen].__name__} and {state.__name__} share a screen")
        else:
            screens[screen] = state
        if state not in handlers:
            problems.append(f"no handler for {state.__name__}")
    initial = [state for state in seen if state.initial]
    if not initial:
        problems.append("no initial state (one state class must set initial = True)")
    elif len(initial) > 1:
        names = ", ".join(sorted(state.__name__ for state in initial))
        problems.append(f"{len(initial)} initial states ({names}): exactly one is allowed")
    problems += [
        f"a handler for {getattr(state, '__name__', state)}, which is not one of its states"
        for state in handlers
        if state not in seen
    ]
    if problems:
        raise FlowDefinitionError(f"{machine} is badly defined: " + "; ".join(problems))
    return initial[0]


class TransitionTable:
    """A machine's states and their handlers, checked when the class is defined.

    Like python-statemachine, a machine refuses to exist with a broken table: defining a
    subclass with a state left without a handler, a handler for a state it does not have, or
    not exactly one initial state raises :class:`FlowDefinitionError` there and then, at
    import, never at the first event.
    """

    #: every state the machine can be in
    states: ClassVar[tuple[type[FlowState], ...]] = ()
    #: what an event does in each of them
    handlers: ClassVar[Mapping[type[FlowState], Handler]] = MappingProxyType({})
    #: the one state class marked ``initial`` (set by the check)
    initial_state: ClassVar[type[FlowState]]

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls.initial_state = check_table(cls.__name__, cls.states, cls.handlers)


class FlowMachine(TransitionTable):
    """The transition function with its settings (PIN floor, timeouts). Holds no state."""

    states = STATE_TYPES
    handlers = MappingProxyType[type[FlowState], Handler](
        {
            Idle: outside_session.on_idle,
            ChoosingLanguage: outside_session.on_languages,
            NoCardHelp: outside_session.on_no_card_help,
            ReadingCard: card_session.on_reading,
            ChoosingCheck: card_session.on_choosing_check,
            EnteringPin: card_session.on_pin_entry,
            Checking: card_session.on_checking,
            VisualCheckWait: card_session.on_visual_wait,
            ResultOk: outside_session.on_concluded,
            NeedsStaff: outside_session.on_concluded,
            ErrorNotice: outside_session.on_concluded,
            OfflineNotice: outside_session.on_concluded,
            TakeCard: outside_session.on_take_card,
            RemovedEarly: outside_session.on_removed_early,
            ReaderMissing: outside_session.on_reader_missing,
            StaffMode: outside_session.on_staff_mode,
        }
    )

    def __init__(self, settings: FlowSettings | None = None) -> None:
        self.settings = settings or FlowSettings()
        self._moves = Moves(self.settings)

    def initial(self) -> Step:
        """The one initial state, :class:`Idle`, and what entering it does."""
        state = self.initial_state()
        return state, self._moves.entry(state)

    def step(self, state: FlowState, event: Event) -> Step:
        """The next state and the effects to execute, in order. Never raises for any event."""
        if isinstance(event, TimerFired) and event.generation != state.timer:
            return state, ()
        if isinstance(event, SESSION_EVENTS) and event.session != state.session:
            return state, ()
        if isinstance(event, ReaderLost):
            return self._moves.reader_lost(state, event.code)
        if isinstance(event, CertificateDates):  # kept for the result screen
            if isinstance(state, CardSession):
                return replace(state, certificate_expiry=event.expiry), ()
            return state, ()
        if isinstance(event, StaffButtonPressed) and event.long:
            return outside_session.staff_long_press(self._moves, state)
        return self.handlers[type(state)](self._moves, state, event)


def step(state: FlowState, event: Event, settings: FlowSettings | None = None) -> Step:
    """``FlowMachine(settings).step(state, event)``."""
    return FlowMachine(settings).step(state, event)
