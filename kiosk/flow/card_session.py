"""The handlers of a card session: from the card read to the server's answer.

:class:`ReadingCard` ─▶ :class:`EnteringPin` (the default) or :class:`ChoosingCheck` (PIN
locked, at the floor, no PIN) ─▶ :class:`Checking` ─▶ the outcome, or :class:`VisualCheckWait`
while staff compare photo and face. When the card session reports the PIN as already verified
(an iPhone after Face ID or Touch ID), :class:`ReadingCard` goes straight to :class:`Checking`.
A removal or a failure is handled the same in each of them.

The machine never sees a PIN digit: it counts them, answers each with :class:`AcceptDigit`, and
emits :class:`VerifyPin` only on the fourth digit, with tries left at or above the floor. A
server ``retry`` re-signs a fresh challenge once; the PIN is never sent again.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from contract.challenge import Mode
from kiosk.flow.effects import (
    AcceptDigit,
    AwaitStaffDecision,
    ClearPin,
    ConfirmVisual,
    EraseDigit,
    NewPinEntry,
    PlaySound,
    Record,
    SignAndSend,
    VerifyPin,
)
from kiosk.flow.events import (
    Answer,
    CardFailed,
    CardLifted,
    CardRead,
    ConfirmRefused,
    Event,
    PinAccepted,
    PinWrong,
    Pressed,
    ServerAnswered,
    ServerFailed,
    StaffButtonPressed,
    TimerFired,
)
from kiosk.flow.moves import Moves, Step
from kiosk.flow.notices import BY_PATIENT_MESSAGE, Notice
from kiosk.flow.screens import PinUnavailable, UiAction
from kiosk.flow.states import (
    CardSession,
    Checking,
    ChoosingCheck,
    EnteringPin,
    FlowState,
    OfflineNotice,
    ReadingCard,
    ResultOk,
    VisualCheckWait,
)
from kiosk.hw.signals import Sound

#: Digits in a user-authentication PIN.
PIN_LENGTH: Final = 4

#: CardFailed codes that mean the card is gone, the reader is gone, or it is no JPKI card.
_REMOVAL_CODES: Final = frozenset({"card.removed", "card.absent"})
_READER_CODES: Final = frozenset({"card.reader_gone", "card.pcsc_gone"})
_NOT_JPKI_CODES: Final = frozenset({"card.not_jpki", "card.unsupported_token"})

_UNAVAILABLE_NOTICES: Final[dict[PinUnavailable, Notice]] = {
    PinUnavailable.LOCKED: Notice.PIN_LOCKED,
    PinUnavailable.AT_FLOOR: Notice.PIN_AT_FLOOR,
    PinUnavailable.NO_PIN: Notice.NO_PIN,
}

_ELIGIBLE: Final = {"eligible": False, "eligible.renew_certificate": True}


# --- one handler per state ---------------------------------------------------------------------


def on_reading(moves: Moves, state: FlowState, event: Event) -> Step:
    assert isinstance(state, ReadingCard)
    common = _session_common(moves, state, event, None)
    if common is not None:
        return common
    if isinstance(event, CardRead):
        facts = event.facts
        record = Record(
            "card.read",
            (
                ("token", facts.token),
                ("tries_left", facts.tries_left),
                ("has_pin", facts.tries_left is not None),
            ),
        )
        known = replace(state, facts=facts, tries_left=facts.tries_left)
        if facts.pin_verified:
            new_state, effects = _sign_verified(moves, known)
            return new_state, (record, *effects)
        new_state, effects = _offer(moves, known, facts.tries_left, "card.read", wrong_pin=False)
        return new_state, (record, *effects)
    if isinstance(event, TimerFired):
        return moves.notice(state, Notice.CARD_UNREADABLE, "timer.reading")
    return state, ()


def on_choosing_check(moves: Moves, state: FlowState, event: Event) -> Step:
    assert isinstance(state, ChoosingCheck)
    common = _session_common(moves, state, event, None)
    if common is not None:
        return common
    if isinstance(event, Pressed):
        if event.action is UiAction.CHOOSE_PIN and state.pin_unavailable is None:
            return _offer(moves, state, state.tries_left, "ui.choose_pin", wrong_pin=False)
        if event.action is UiAction.CHOOSE_VISUAL and state.visual_possible:
            return _start_visual(moves, state, "ui.choose_visual")
        if event.action is UiAction.CANCEL:
            return moves.take_card(state, "ui.cancel")
        if event.action is UiAction.CALL_STAFF:
            return moves.notice(state, Notice.NO_CARD, "ui.call_staff")
    if isinstance(event, TimerFired):
        return moves.take_card(state, "timer.choose_check")
    return state, ()


def on_pin_entry(moves: Moves, state: FlowState, event: Event) -> Step:
    assert isinstance(state, EnteringPin)
    common = _session_common(moves, state, event, None)
    if common is not None:
        return common
    if isinstance(event, Pressed):
        action = event.action
        if action is UiAction.DIGIT:
            return _digit(moves, state)
        if action is UiAction.CALL_STAFF:
            return moves.notice(state, Notice.NO_CARD, "ui.call_staff")
        if action is UiAction.ERASE and state.digits > 0:
            return moves.go(
                state,
                replace(state, digits=state.digits - 1),
                "ui.erase",
                EraseDigit(state.session),
                PlaySound(Sound.KEY),
            )
        if action is UiAction.CANCEL:
            if state.visual_possible:
                choice = ChoosingCheck(
                    language=state.language,
                    session=state.session,
                    facts=state.facts,
                    tries_left=state.tries_left,
                    wrong_pins=state.wrong_pins,
                )
                return moves.go(state, choice, "ui.cancel", ClearPin(state.session))
            return moves.take_card(state, "ui.cancel")
        if action is UiAction.CHOOSE_VISUAL and state.visual_possible:
            return _start_visual(moves, state, "ui.choose_visual")
    if isinstance(event, TimerFired):
        return moves.take_card(state, "timer.pin_entry")
    return state, ()


def on_checking(moves: Moves, state: FlowState, event: Event) -> Step:
    assert isinstance(state, Checking)
    common = _session_common(moves, state, event, state.mode)
    if common is not None:
        return common
    if isinstance(event, PinAccepted) and state.verifying:
        return (
            replace(state, verifying=False),
            (SignAndSend(state.session, "pin"),),
        )
    if isinstance(event, PinWrong) and state.verifying:
        wrong = replace(state, wrong_pins=state.wrong_pins + 1, tries_left=event.tries_left)
        record = Record(
            "pin.wrong",
            (("tries_left", event.tries_left), ("wrong_pins", wrong.wrong_pins)),
        )
        new_state, effects = _offer(moves, wrong, event.tries_left, "pin.wrong", wrong_pin=True)
        return new_state, (record, *effects)
    if isinstance(event, ServerAnswered) and not state.verifying:
        return _answered(moves, state, event.answer, state.mode, retried=state.retried)
    if isinstance(event, TimerFired):
        return moves.notice(state, Notice.SERVER_ERROR, "timer.checking", mode=state.mode)
    return state, ()


def on_visual_wait(moves: Moves, state: FlowState, event: Event) -> Step:
    assert isinstance(state, VisualCheckWait)
    common = _session_common(moves, state, event, "visual")
    if common is not None:
        return common
    if isinstance(event, StaffButtonPressed) and not state.confirming:
        return (
            replace(state, confirming=True),
            (
                Record("staff.action", (("action", "visual_confirm"), ("via", "button"))),
                ConfirmVisual(state.session, state.verification_id),
            ),
        )
    if isinstance(event, ConfirmRefused) and state.confirming:
        # the clinic wants the dashboard's confirmation: staff are called (again) and the
        # long-poll goes on until they decide there
        return (
            replace(state, confirming=False, alerts=state.alerts + 1),
            (
                Record("staff.confirm_refused", (("alerts", state.alerts + 1),)),
                PlaySound(Sound.REMINDER_1),
            ),
        )
    if isinstance(event, ServerAnswered):
        if event.answer.verification_id != state.verification_id:
            return state, ()
        return _answered(moves, state, event.answer, "visual", retried=True)
    if isinstance(event, Pressed) and event.action is UiAction.CANCEL:
        return moves.take_card(state, "ui.cancel")
    if isinstance(event, TimerFired):
        return moves.go(
            state,
            replace(state, alerts=state.alerts + 1),
            "timer.visual_wait",
            Record("staff.recall", (("alerts", state.alerts + 1),)),
            PlaySound(Sound.REMINDER_1),
        )
    return state, ()


# --- what every card-session state does alike --------------------------------------------------


def _session_common(
    moves: Moves, state: CardSession, event: Event, mode: Mode | None
) -> Step | None:
    """Removal and failures, the same in every card-session state."""
    if isinstance(event, CardLifted):
        return moves.removed_early(state)
    if isinstance(event, CardFailed):
        return _card_failed(moves, state, event.code)
    if isinstance(event, ServerFailed):
        return _server_failed(moves, state, event, mode)
    return None


def _card_failed(moves: Moves, state: CardSession, code: str) -> Step:
    if code in _REMOVAL_CODES:
        return moves.removed_early(state)
    if code in _READER_CODES:
        return moves.reader_lost(state, code)
    record = Record("card.error", (("code", code),))
    notice = Notice.NOT_MY_NUMBER_CARD if code in _NOT_JPKI_CODES else Notice.CARD_UNREADABLE
    new_state, effects = moves.notice(state, notice, code)
    return new_state, (record, *effects)


def _server_failed(moves: Moves, state: FlowState, event: ServerFailed, mode: Mode | None) -> Step:
    record = Record("server.error", (("code", event.code),))
    if event.unreachable:
        new_state, effects = moves.conclude(state, OfflineNotice(), event.code, mode=mode)
    else:
        new_state, effects = moves.notice(state, Notice.SERVER_ERROR, event.code, mode=mode)
    return new_state, (record, *effects)


# --- the PIN, the visual check, the answer -----------------------------------------------------


def _pin_route(tries_left: int | None, floor: int) -> PinUnavailable | None:
    if tries_left is None:
        return PinUnavailable.NO_PIN
    if tries_left == 0:
        return PinUnavailable.LOCKED
    if tries_left < floor:
        return PinUnavailable.AT_FLOOR
    return None


def _offer(
    moves: Moves, state: CardSession, tries_left: int | None, reason: str, *, wrong_pin: bool
) -> Step:
    """PIN entry when the PIN may be asked for; else the visual check, or the desk."""
    unavailable = _pin_route(tries_left, moves.floor)
    sound = (PlaySound(Sound.FAILURE),) if wrong_pin else ()
    if unavailable is None:
        entry = EnteringPin(
            language=state.language,
            session=state.session,
            facts=state.facts,
            tries_left=tries_left,
            wrong_pins=state.wrong_pins,
            wrong_pin=wrong_pin,
        )
        return moves.go(state, entry, reason, NewPinEntry(state.session), *sound)
    if state.visual_possible:
        choice = ChoosingCheck(
            language=state.language,
            session=state.session,
            facts=state.facts,
            tries_left=tries_left,
            wrong_pins=state.wrong_pins,
            pin_unavailable=unavailable,
            wrong_pin=wrong_pin,
        )
        return moves.go(state, choice, reason, ClearPin(state.session), *sound)
    return moves.notice(state, _UNAVAILABLE_NOTICES[unavailable], reason)


def _checking(state: CardSession, mode: Mode, *, verifying: bool = False) -> Checking:
    """The session's card, tries and wrong PINs carried into the check."""
    return Checking(
        language=state.language,
        session=state.session,
        facts=state.facts,
        tries_left=state.tries_left,
        wrong_pins=state.wrong_pins,
        mode=mode,
        verifying=verifying,
    )


def _digit(moves: Moves, state: EnteringPin) -> Step:
    if state.digits >= PIN_LENGTH:  # cannot happen: the fourth digit leaves this state
        return state, ()
    typed = state.digits + 1
    accept = (AcceptDigit(state.session), PlaySound(Sound.KEY))
    if typed < PIN_LENGTH:
        return moves.go(state, replace(state, digits=typed), "ui.digit", *accept)
    if state.tries_left is None or state.tries_left < moves.floor:
        # never reached: PIN entry is only offered above the floor; stay safe regardless
        return _offer(moves, state, state.tries_left, "pin.refused", wrong_pin=False)
    checking = _checking(state, "pin", verifying=True)
    return moves.go(state, checking, "pin.complete", *accept, VerifyPin(state.session))


def _sign_verified(moves: Moves, state: CardSession) -> Step:
    """The phone reports the PIN already verified (Face ID or Touch ID on an iPhone): no PIN
    pad, the phone signs. The kiosk sent no PIN and spent no try."""
    checking = _checking(state, "pin")
    return moves.go(
        state,
        checking,
        "card.pin_verified",
        Record("pin.verified_on_phone", (("token", state.facts.token if state.facts else ""),)),
        SignAndSend(state.session, "pin"),
    )


def _start_visual(moves: Moves, state: CardSession, reason: str) -> Step:
    checking = _checking(state, "visual")
    return moves.go(
        state, checking, reason, ClearPin(state.session), SignAndSend(state.session, "visual")
    )


def _answered(
    moves: Moves, state: CardSession, answer: Answer, mode: Mode, *, retried: bool
) -> Step:
    message = answer.patient_message
    if answer.awaiting_staff:
        if mode == "visual" and not isinstance(state, VisualCheckWait):
            wait = VisualCheckWait(
                language=state.language,
                session=state.session,
                facts=state.facts,
                tries_left=state.tries_left,
                wrong_pins=state.wrong_pins,
                certificate_expiry=state.certificate_expiry,
                verification_id=answer.verification_id,
            )
            return moves.go(
                state,
                wait,
                answer.reason_code,
                AwaitStaffDecision(state.session, answer.verification_id),
            )
        if isinstance(state, VisualCheckWait):
            return state, ()
        return moves.notice(state, Notice.SERVER_ERROR, answer.reason_code, answer=answer)
    if message == "retry" and isinstance(state, Checking) and not retried:
        again = replace(state, retried=True, verifying=False)
        return moves.go(
            state,
            again,
            answer.reason_code,
            Record("server.retry", (("reason_code", answer.reason_code),)),
            SignAndSend(state.session, mode, fresh_challenge=True),
        )
    if message in _ELIGIBLE:
        ok = ResultOk(
            renew_certificate=_ELIGIBLE[message],
            certificate_expiry=state.certificate_expiry,
            copay_percent=answer.copay_percent if moves.settings.show_copay_ratio else None,
        )
        return moves.conclude(state, ok, answer.reason_code, mode=mode, answer=answer)
    notice = BY_PATIENT_MESSAGE.get(message, Notice.SERVER_ERROR)
    return moves.notice(state, notice, answer.reason_code, mode=mode, answer=answer)
