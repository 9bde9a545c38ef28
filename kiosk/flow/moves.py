"""The moves every handler is made of: enter a state, go back to idle, start a card session,
conclude a visit, end it early.

Entering a state is always the same (:meth:`Moves.go`): a ``flow.transition`` record when the
kind of state changes, :class:`EndSession` when a card session ends, the state's timer, screen
and lights (:mod:`kiosk.flow.views`), the staff call its screen announces or no longer
announces (:class:`CallStaff`, :class:`ClearStaffCall`), and the sounds last. The handlers of
:mod:`kiosk.flow.card_session` and :mod:`kiosk.flow.outside_session` only decide which state
comes next and what else to do.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TypeAlias

from contract.challenge import Mode
from kiosk.flow.effects import (
    CallStaff,
    ClearStaffCall,
    Effect,
    Effects,
    EndSession,
    PlaySound,
    PrepareServer,
    ReadCard,
    Record,
    SetLights,
    ShowScreen,
    StartTimer,
)
from kiosk.flow.events import Answer
from kiosk.flow.notices import Notice
from kiosk.flow.screens import DEFAULT_LANGUAGE
from kiosk.flow.settings import FlowSettings
from kiosk.flow.states import (
    CardSession,
    Concluded,
    ErrorNotice,
    FlowState,
    Idle,
    NeedsStaff,
    OfflineNotice,
    ReaderMissing,
    ReadingCard,
    RemovedEarly,
    ResultOk,
    TakeCard,
)
from kiosk.flow.views import lights_of, route_of, screen_of, staff_call_of, timeout_of
from kiosk.hw.signals import Sound

#: A transition's result: the next state and the effects to execute, in order.
Step: TypeAlias = tuple[FlowState, Effects]


class Moves:
    """The transitions shared by the handlers, with the settings (PIN floor, timeouts)."""

    def __init__(self, settings: FlowSettings) -> None:
        self.settings = settings

    @property
    def floor(self) -> int:
        return self.settings.pin_floor

    def entry(self, state: FlowState) -> Effects:
        """What entering ``state`` does: its timer, its screen, its lights."""
        reminder = state.reminder_level if isinstance(state, TakeCard) else 0
        return (
            StartTimer(timeout_of(state, self.settings), state.timer),
            ShowScreen(screen_of(state)),
            SetLights(lights_of(state), reminder),
        )

    def go(
        self,
        old: FlowState,
        new: FlowState,
        reason: str,
        *extra: Effect,
        end: bool = False,
    ) -> Step:
        """Enter ``new`` (or re-enter the same kind): a fresh timer, screen and lights.

        ``extra`` effects run after the session is wiped (if it ends) and before the screen,
        so card and server work starts first; sounds come last, after the screen and the
        lights: a beep never delays what the patient sees or the card.
        """
        calling = staff_call_of(new)
        called = staff_call_of(old)
        visit = old.visit + 1 if calling is not None and calling != called else old.visit
        new = replace(new, timer=old.timer + 1, visit=visit)
        effects: list[Effect] = []
        if type(old) is not type(new):
            effects.append(
                Record(
                    "flow.transition", (("from", old.name), ("to", new.name), ("reason", reason))
                )
            )
        leaving_session = isinstance(old, CardSession) and not isinstance(new, CardSession)
        if leaving_session or end:
            effects.append(EndSession(old.session))
        effects.extend(e for e in extra if not isinstance(e, PlaySound))
        effects.extend(self.entry(new))
        if calling != called:
            if called is not None:
                effects.append(ClearStaffCall(old.visit))
            if calling is not None:
                effects.append(
                    CallStaff(visit, calling.reason, calling.notice, calling.verification_id)
                )
        effects.extend(e for e in extra if isinstance(e, PlaySound))
        return new, tuple(effects)

    def idle(self, state: FlowState, reason: str, *extra: Effect) -> Step:
        """Back to the start, in Japanese, for the next patient."""
        return self.go(state, Idle(session=state.session), reason, *extra)

    def reading(self, state: FlowState, *, keep_language: bool) -> Step:
        """A card was placed: a new card session starts by reading it."""
        session = state.session + 1
        new = ReadingCard(
            language=state.language if keep_language else DEFAULT_LANGUAGE, session=session
        )
        return self.go(
            state,
            new,
            "card.inserted",
            Record("card.inserted"),
            PlaySound(Sound.CARD_DETECTED),
            ReadCard(session),
            PrepareServer(session),
        )

    def reader_lost(self, state: FlowState, code: str) -> Step:
        """The reader went away: whatever was going on ends, the reader is looked for."""
        if isinstance(state, ReaderMissing):
            return state, ()
        return self.go(
            state,
            ReaderMissing(language=DEFAULT_LANGUAGE, session=state.session),
            "reader.lost",
            Record("reader.lost", (("code", code),)),
            end=True,
        )

    def removed_early(self, state: FlowState) -> Step:
        return self.go(
            state,
            RemovedEarly(language=state.language, session=state.session),
            "card.removed",
            Record("card.removed", (("during", state.name),)),
            PlaySound(Sound.FAILURE),
            end=True,
        )

    def take_card(self, state: FlowState, reason: str) -> Step:
        return self.go(
            state, TakeCard(language=state.language, session=state.session), reason, end=True
        )

    def conclude(
        self,
        state: FlowState,
        new: Concluded,
        reason: str,
        *,
        mode: Mode | None,
        answer: Answer | None = None,
    ) -> Step:
        """A patient's outcome: the screen, a sound and the outcome summary for the log."""
        new = replace(
            new,
            language=state.language,
            session=state.session,
            card_present=True,
            verification_id=answer.verification_id if answer is not None else "",
        )
        notice = new.notice if isinstance(new, NeedsStaff | ErrorNotice) else None
        if isinstance(new, OfflineNotice):
            notice = Notice.SERVER_UNREACHABLE
        summary = Record(
            "verification.outcome",
            (
                ("route", route_of(new, mode)),
                ("notice", notice.number if notice is not None else None),
                ("validity_code", answer.validity_code if answer is not None else None),
                ("reason_code", answer.reason_code if answer is not None else reason),
                ("mode", mode),
                ("wrong_pins", state.wrong_pins if isinstance(state, CardSession) else 0),
            ),
        )
        sound = Sound.SUCCESS if isinstance(new, ResultOk) else Sound.FAILURE
        return self.go(state, new, reason, summary, PlaySound(sound), end=True)

    def notice(
        self,
        state: FlowState,
        notice: Notice,
        reason: str,
        *,
        mode: Mode | None = None,
        answer: Answer | None = None,
    ) -> Step:
        """Conclude with a numbered notice: a red error, or staff called to the kiosk."""
        concluded: Concluded
        if notice.card_unusable or not notice.needs_staff:
            concluded = ErrorNotice(notice=notice)
        else:
            concluded = NeedsStaff(notice=notice)
        return self.conclude(state, concluded, reason, mode=mode, answer=answer)
