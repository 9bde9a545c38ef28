"""The verification flow as a pure state machine: ``step(state, event) -> (state, effects)``.

Nothing here does I/O, reads a clock or starts a thread. The runner (:mod:`kiosk.flow.runner`)
executes the effects - the screen, the lights, the buzzer, the card, the clinic server, the
outbox, a timer - and feeds what happened back in as events. Timeouts are events too: every
state asks for one timer when it is entered (:class:`StartTimer`), and a :class:`TimerFired`
of an older generation is ignored.

The states, by what the patient sees (their :class:`~kiosk.flow.screens.ScreenId`)::

    Idle ─ language ─▶ ChoosingLanguage          Idle ─ no card ─▶ NoCardHelp (staff called)
      │ card placed
      ▼
    ReadingCard ─▶ EnteringPin ─ 4th digit ─▶ Checking ─▶ ResultOk / NeedsStaff / ErrorNotice
      │   (PIN by default)  │ back / wrong PIN at the floor           │ card left on the reader
      │                     ▼                                        ▼
      └─ PIN locked, at the floor, no PIN ─▶ ChoosingCheck ─ visual ─▶ Checking ─▶ VisualCheckWait
                                                                          (staff confirm)
    removed before the end ─▶ RemovedEarly ─▶ Idle     TakeCard (reminders escalate) ─▶ Idle
    ReaderMissing, ServerUnreachable, StaffMode (long press on the staff button)

Rules the machine keeps (and its tests check):

* The machine never sees a PIN digit: a key press arrives as ``Pressed(DIGIT)`` without its
  value; the runner keeps the digit and types it into the card session's ``PinEntry`` when
  the machine answers :class:`AcceptDigit`. The machine only counts digits.
* :class:`VerifyPin` is emitted only on the fourth digit of the current PIN entry, and only
  when the tries left are at or above the policy floor. A server ``retry`` answer re-signs a
  fresh challenge (:class:`SignAndSend`) once; the PIN is never sent again.
* Every state has a timeout; every state leads back to :class:`Idle`; a card removed at any
  moment ends in a clear message and then :class:`Idle`.
* Leaving a card session for anything else emits :class:`EndSession`: the runner clears the
  PIN entry and drops the certificate, the challenge and the result.
* Results from workers carry the session they belong to; those of an earlier card are
  ignored. The language goes back to Japanese after every patient.
* Everything worth keeping goes to the outbox through :class:`Record` effects: transitions with
  a reason code, card events, wrong-PIN counts (never a PIN), staff actions, the outcome
  summary (notice number, validity code) - never personal data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import ClassVar, Final, TypeAlias

from kiosk.challenge import Mode
from kiosk.flow.notices import BY_PATIENT_MESSAGE, Notice
from kiosk.flow.screens import (
    DEFAULT_LANGUAGE,
    Language,
    PinUnavailable,
    Screen,
    ScreenId,
    UiAction,
)
from kiosk.hw.config import ReminderSchedule
from kiosk.hw.patterns import REMINDER_SOUNDS
from kiosk.hw.reminder import level_at, next_sound_at
from kiosk.hw.signals import LightSignal, Sound

#: Digits in a user-authentication PIN.
PIN_LENGTH: Final = 4

# --- settings ----------------------------------------------------------------------------------


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

    def __post_init__(self) -> None:
        if not 1 <= self.pin_floor <= 3:
            raise ValueError(f"the PIN floor must be 1..3, not {self.pin_floor}")


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


@dataclass(frozen=True)
class Answer:
    """The clinic server's answer about one verification (no personal data)."""

    verification_id: str
    awaiting_staff: bool
    #: ``eligible``, ``eligible.renew_certificate``, ``retry``, ``wait_staff``, ``see_staff.*``
    patient_message: str
    reason_code: str
    validity_code: int | None = None


# --- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardInserted:
    """A card arrived on the kiosk's reader."""


@dataclass(frozen=True)
class CardRemoved:
    """The card left the kiosk's reader."""


@dataclass(frozen=True)
class ReaderLost:
    """The reader was unplugged, or pcscd went away."""

    code: str = "card.reader_gone"


@dataclass(frozen=True)
class ReaderBack:
    """The reader is there (again)."""


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
class Pressed:
    """A touch or key; a DIGIT never carries its value here (the runner keeps it)."""

    action: UiAction
    language: Language | None = None


@dataclass(frozen=True)
class StaffButton:
    """The physical staff button: a short press confirms a visual check, a long one opens
    staff mode."""

    long: bool = False


@dataclass(frozen=True)
class TimerFired:
    generation: int


Event: TypeAlias = (
    CardInserted
    | CardRemoved
    | ReaderLost
    | ReaderBack
    | CardRead
    | CardFailed
    | PinAccepted
    | PinWrong
    | ServerAnswered
    | ServerFailed
    | Pressed
    | StaffButton
    | TimerFired
)

# --- effects -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShowScreen:
    screen: Screen


@dataclass(frozen=True)
class SetLights:
    signal: LightSignal
    #: card-left reminder level 0..3: the signal's lamp blinks faster
    reminder: int = 0


@dataclass(frozen=True)
class PlaySound:
    sound: Sound


@dataclass(frozen=True)
class StartTimer:
    """Replace the pending timer: fire ``TimerFired(generation)`` after ``seconds``."""

    seconds: float
    generation: int


RecordValue: TypeAlias = str | int | bool | None


@dataclass(frozen=True)
class Record:
    """Append to the outbox: ``kind`` (``flow.transition``...) and a flat payload."""

    kind: str
    items: tuple[tuple[str, RecordValue], ...] = ()

    @property
    def payload(self) -> dict[str, RecordValue]:
        return dict(self.items)


@dataclass(frozen=True)
class ReadCard:
    """Open the card: token and tries left (reported), then the certificate (kept)."""

    session: int


@dataclass(frozen=True)
class PrepareServer:
    """Fetch a challenge and warm the TLS connection while the patient types."""

    session: int


@dataclass(frozen=True)
class NewPinEntry:
    """Start a fresh, empty PIN entry bound to the card session (the old one is wiped)."""

    session: int


@dataclass(frozen=True)
class AcceptDigit:
    """Type the digit the patient just pressed into the PIN entry."""

    session: int


@dataclass(frozen=True)
class EraseDigit:
    session: int


@dataclass(frozen=True)
class ClearPin:
    """Wipe the PIN entry (the patient went back)."""

    session: int


@dataclass(frozen=True)
class VerifyPin:
    """Send the four typed digits to the card, once."""

    session: int


@dataclass(frozen=True)
class SignAndSend:
    """Sign the challenge (PIN mode; a fresh one if asked) and send the verification."""

    session: int
    mode: Mode
    fresh_challenge: bool = False


@dataclass(frozen=True)
class AwaitStaffDecision:
    """Long-poll the server until staff decide the visual check."""

    session: int
    verification_id: str


@dataclass(frozen=True)
class ConfirmVisual:
    """Staff pressed the kiosk's button: confirm the visual check."""

    session: int
    verification_id: str


@dataclass(frozen=True)
class CheckReader:
    """Look at the reader now: reported as ``ReaderBack`` when it is there, else ``ReaderLost``."""


@dataclass(frozen=True)
class EndSession:
    """Wipe the session: PIN entry cleared, certificate, challenge and result dropped, card
    work and staff waits cancelled, the card link reset."""

    session: int


Effect: TypeAlias = (
    ShowScreen
    | SetLights
    | PlaySound
    | StartTimer
    | Record
    | ReadCard
    | PrepareServer
    | NewPinEntry
    | AcceptDigit
    | EraseDigit
    | ClearPin
    | VerifyPin
    | SignAndSend
    | AwaitStaffDecision
    | ConfirmVisual
    | CheckReader
    | EndSession
)

Effects: TypeAlias = tuple[Effect, ...]

# --- states ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FlowState:
    """What every state holds: the patient's language, the timer generation, the session."""

    screen_id: ClassVar[ScreenId]
    language: Language = DEFAULT_LANGUAGE
    #: generation of this state's timeout; an older TimerFired is ignored
    timer: int = 0
    #: the card session (counts card placements); worker events of another are ignored
    session: int = 0

    @property
    def name(self) -> str:
        return self.screen_id.value


@dataclass(frozen=True, kw_only=True)
class Idle(FlowState):
    screen_id = ScreenId.IDLE


@dataclass(frozen=True, kw_only=True)
class ChoosingLanguage(FlowState):
    screen_id = ScreenId.LANGUAGES


@dataclass(frozen=True, kw_only=True)
class NoCardHelp(FlowState):
    """No card or a 資格確認書: what to show at the desk; staff are called (amber)."""

    screen_id = ScreenId.NO_CARD_HELP


@dataclass(frozen=True, kw_only=True)
class CardSession(FlowState):
    """A state in which a card is on the reader and being used."""

    facts: CardFacts | None = None
    #: tries left as last reported by the card
    tries_left: int | None = None
    #: wrong PINs typed in this session (a count, for the log)
    wrong_pins: int = 0

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


@dataclass(frozen=True, kw_only=True)
class Concluded(FlowState):
    """A patient's outcome is on the screen; the card may still be on the reader."""

    card_present: bool = True


@dataclass(frozen=True, kw_only=True)
class ResultOk(Concluded):
    screen_id = ScreenId.RESULT_OK
    renew_certificate: bool = False


@dataclass(frozen=True, kw_only=True)
class NeedsStaff(Concluded):
    screen_id = ScreenId.NEEDS_STAFF
    notice: Notice = Notice.SERVER_ERROR


@dataclass(frozen=True, kw_only=True)
class ErrorNotice(Concluded):
    screen_id = ScreenId.ERROR
    notice: Notice = Notice.NOT_MY_NUMBER_CARD


@dataclass(frozen=True, kw_only=True)
class ServerUnreachable(Concluded):
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
    ServerUnreachable,
    StaffMode,
)

# --- what each state shows ---------------------------------------------------------------------


def screen_of(state: FlowState) -> Screen:
    """The screen a state shows: as little as the patient needs, no personal data."""
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
        return replace(base, renew_certificate=state.renew_certificate)
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
    """Green eligible; amber staff (blinking: visual check waiting); red error; blue ready/busy."""
    if isinstance(state, TakeCard):
        return state.signal
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
    if isinstance(state, NoCardHelp | ReaderMissing | ServerUnreachable):
        return LightSignal.STAFF_NEEDED
    if isinstance(state, RemovedEarly):
        return LightSignal.ERROR
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

Step: TypeAlias = tuple[FlowState, Effects]

# --- the machine -------------------------------------------------------------------------------


class FlowMachine:
    """The transition function with its settings (PIN floor, timeouts). Holds no state."""

    def __init__(self, settings: FlowSettings | None = None) -> None:
        self.settings = settings or FlowSettings()

    def initial(self) -> Step:
        """The one initial state, :class:`Idle`, and what entering it does."""
        state = Idle()
        return state, self._entry(state)

    def step(self, state: FlowState, event: Event) -> Step:
        """The next state and the effects to execute, in order. Never raises for any event."""
        if isinstance(event, TimerFired) and event.generation != state.timer:
            return state, ()
        if isinstance(event, _SESSION_EVENTS) and event.session != state.session:
            return state, ()
        if isinstance(event, ReaderLost):
            if isinstance(state, ReaderMissing):
                return state, ()
            return self._go(
                state,
                ReaderMissing(language=DEFAULT_LANGUAGE, session=state.session),
                "reader.lost",
                Record("reader.lost", (("code", event.code),)),
                end=True,
            )
        if isinstance(event, StaffButton) and event.long:
            return self._staff_button_long(state)
        handler = _HANDLERS[type(state)]
        return handler(self, state, event)

    # -- helpers --

    @property
    def _floor(self) -> int:
        return self.settings.pin_floor

    def _entry(self, state: FlowState) -> Effects:
        reminder = state.reminder_level if isinstance(state, TakeCard) else 0
        return (
            StartTimer(timeout_of(state, self.settings), state.timer),
            ShowScreen(screen_of(state)),
            SetLights(lights_of(state), reminder),
        )

    def _go(
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
        new = replace(new, timer=old.timer + 1)
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
        effects.extend(self._entry(new))
        effects.extend(e for e in extra if isinstance(e, PlaySound))
        return new, tuple(effects)

    def _idle(self, state: FlowState, reason: str, *extra: Effect) -> Step:
        """Back to the start, in Japanese, for the next patient."""
        return self._go(state, Idle(session=state.session), reason, *extra)

    def _reading(self, state: FlowState, *, keep_language: bool) -> Step:
        session = state.session + 1
        new = ReadingCard(
            language=state.language if keep_language else DEFAULT_LANGUAGE, session=session
        )
        return self._go(
            state,
            new,
            "card.inserted",
            Record("card.inserted"),
            PlaySound(Sound.CARD_DETECTED),
            ReadCard(session),
            PrepareServer(session),
        )

    def _removed_early(self, state: FlowState) -> Step:
        return self._go(
            state,
            RemovedEarly(language=state.language, session=state.session),
            "card.removed",
            Record("card.removed", (("during", state.name),)),
            PlaySound(Sound.FAILURE),
            end=True,
        )

    def _take_card(self, state: FlowState, reason: str) -> Step:
        return self._go(
            state, TakeCard(language=state.language, session=state.session), reason, end=True
        )

    def _conclude(
        self,
        state: FlowState,
        new: Concluded,
        reason: str,
        *,
        mode: Mode | None,
        answer: Answer | None = None,
    ) -> Step:
        """A patient's outcome: the screen, a sound and the outcome summary for the log."""
        new = replace(new, language=state.language, session=state.session, card_present=True)
        notice = new.notice if isinstance(new, NeedsStaff | ErrorNotice) else None
        if isinstance(new, ServerUnreachable):
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
        return self._go(state, new, reason, summary, PlaySound(sound), end=True)

    def _notice(
        self,
        state: FlowState,
        notice: Notice,
        reason: str,
        *,
        mode: Mode | None = None,
        answer: Answer | None = None,
    ) -> Step:
        concluded: Concluded
        if notice.card_unusable or not notice.needs_staff:
            concluded = ErrorNotice(notice=notice)
        else:
            concluded = NeedsStaff(notice=notice)
        return self._conclude(state, concluded, reason, mode=mode, answer=answer)

    def _card_failed(self, state: CardSession, code: str) -> Step:
        if code in _REMOVAL_CODES:
            return self._removed_early(state)
        if code in _READER_CODES:
            return self.step(state, ReaderLost(code))
        record = Record("card.error", (("code", code),))
        notice = Notice.NOT_MY_NUMBER_CARD if code in _NOT_JPKI_CODES else Notice.CARD_UNREADABLE
        new_state, effects = self._notice(state, notice, code)
        return new_state, (record, *effects)

    def _server_failed(self, state: FlowState, event: ServerFailed, mode: Mode | None) -> Step:
        record = Record("server.error", (("code", event.code),))
        if event.unreachable:
            new_state, effects = self._conclude(state, ServerUnreachable(), event.code, mode=mode)
        else:
            new_state, effects = self._notice(state, Notice.SERVER_ERROR, event.code, mode=mode)
        return new_state, (record, *effects)

    def _session_common(self, state: CardSession, event: Event, mode: Mode | None) -> Step | None:
        """Removal and failures, the same in every card-session state."""
        if isinstance(event, CardRemoved):
            return self._removed_early(state)
        if isinstance(event, CardFailed):
            return self._card_failed(state, event.code)
        if isinstance(event, ServerFailed):
            return self._server_failed(state, event, mode)
        return None

    def _staff_button_long(self, state: FlowState) -> Step:
        if isinstance(state, StaffMode):
            return self._leave_staff_mode(state)
        return self._go(
            state,
            StaffMode(card_present=card_present(state), session=state.session),
            "staff.long_press",
            Record("staff.action", (("action", "staff_mode_open"),)),
            end=True,
        )

    def _leave_staff_mode(self, state: StaffMode) -> Step:
        record = Record("staff.action", (("action", "staff_mode_exit"),))
        if state.card_present:
            return self._go(state, TakeCard(session=state.session), "staff.exit", record)
        return self._idle(state, "staff.exit", record, CheckReader())

    def _pin_route(self, tries_left: int | None) -> PinUnavailable | None:
        if tries_left is None:
            return PinUnavailable.NO_PIN
        if tries_left == 0:
            return PinUnavailable.LOCKED
        if tries_left < self._floor:
            return PinUnavailable.AT_FLOOR
        return None

    def _offer(
        self, state: CardSession, tries_left: int | None, reason: str, *, wrong_pin: bool
    ) -> Step:
        """PIN entry when the PIN may be asked for; else the visual check, or the desk."""
        unavailable = self._pin_route(tries_left)
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
            return self._go(state, entry, reason, NewPinEntry(state.session), *sound)
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
            return self._go(state, choice, reason, ClearPin(state.session), *sound)
        return self._notice(state, _UNAVAILABLE_NOTICES[unavailable], reason)

    def _start_visual(self, state: CardSession, reason: str) -> Step:
        checking = Checking(
            language=state.language,
            session=state.session,
            facts=state.facts,
            tries_left=state.tries_left,
            wrong_pins=state.wrong_pins,
            mode="visual",
        )
        return self._go(
            state, checking, reason, ClearPin(state.session), SignAndSend(state.session, "visual")
        )

    def _answered(self, state: CardSession, answer: Answer, mode: Mode, *, retried: bool) -> Step:
        message = answer.patient_message
        if answer.awaiting_staff:
            if mode == "visual" and not isinstance(state, VisualCheckWait):
                wait = VisualCheckWait(
                    language=state.language,
                    session=state.session,
                    facts=state.facts,
                    tries_left=state.tries_left,
                    wrong_pins=state.wrong_pins,
                    verification_id=answer.verification_id,
                )
                return self._go(
                    state,
                    wait,
                    answer.reason_code,
                    AwaitStaffDecision(state.session, answer.verification_id),
                )
            if isinstance(state, VisualCheckWait):
                return state, ()
            return self._notice(state, Notice.SERVER_ERROR, answer.reason_code, answer=answer)
        if message == "retry" and isinstance(state, Checking) and not retried:
            again = replace(state, retried=True, verifying=False)
            return self._go(
                state,
                again,
                answer.reason_code,
                Record("server.retry", (("reason_code", answer.reason_code),)),
                SignAndSend(state.session, mode, fresh_challenge=True),
            )
        if message in _ELIGIBLE:
            ok = ResultOk(renew_certificate=_ELIGIBLE[message])
            return self._conclude(state, ok, answer.reason_code, mode=mode, answer=answer)
        notice = BY_PATIENT_MESSAGE.get(message, Notice.SERVER_ERROR)
        return self._notice(state, notice, answer.reason_code, mode=mode, answer=answer)

    # -- one handler per state --

    def _on_idle(self, state: FlowState, event: Event) -> Step:
        if isinstance(event, CardInserted):
            return self._reading(state, keep_language=True)
        if isinstance(event, Pressed):
            if event.action is UiAction.NO_CARD:
                return self._go(
                    state,
                    NoCardHelp(language=state.language, session=state.session),
                    "ui.no_card",
                    Record("staff.action", (("action", "called_no_card"),)),
                )
            if event.action is UiAction.OPEN_LANGUAGES:
                return self._go(
                    state,
                    ChoosingLanguage(language=state.language, session=state.session),
                    "ui.languages",
                )
            if event.action is UiAction.SET_LANGUAGE and event.language is not None:
                return self._go(state, replace(state, language=event.language), "ui.language")
        if isinstance(event, TimerFired):
            return self._idle(state, "timer.idle", CheckReader())
        return state, ()

    def _on_languages(self, state: FlowState, event: Event) -> Step:
        if isinstance(event, CardInserted):
            return self._reading(state, keep_language=True)
        if isinstance(event, Pressed):
            if event.action is UiAction.SET_LANGUAGE and event.language is not None:
                return self._go(
                    state, Idle(language=event.language, session=state.session), "ui.language"
                )
            if event.action is UiAction.CANCEL:
                return self._go(
                    state, Idle(language=state.language, session=state.session), "ui.cancel"
                )
        if isinstance(event, TimerFired):
            return self._idle(state, "timer.languages")
        return state, ()

    def _on_no_card_help(self, state: FlowState, event: Event) -> Step:
        if isinstance(event, CardInserted):
            return self._reading(state, keep_language=True)
        if isinstance(event, Pressed) and event.action in (UiAction.DONE, UiAction.CANCEL):
            return self._idle(state, "ui.done")
        if isinstance(event, StaffButton):
            return self._idle(
                state, "staff.button", Record("staff.action", (("action", "acknowledged"),))
            )
        if isinstance(event, TimerFired):
            return self._idle(state, "timer.no_card_help")
        return state, ()

    def _on_reading(self, state: FlowState, event: Event) -> Step:
        assert isinstance(state, ReadingCard)
        common = self._session_common(state, event, None)
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
            new_state, effects = self._offer(known, facts.tries_left, "card.read", wrong_pin=False)
            return new_state, (record, *effects)
        if isinstance(event, TimerFired):
            return self._notice(state, Notice.CARD_UNREADABLE, "timer.reading")
        return state, ()

    def _on_choosing(self, state: FlowState, event: Event) -> Step:
        assert isinstance(state, ChoosingCheck)
        common = self._session_common(state, event, None)
        if common is not None:
            return common
        if isinstance(event, Pressed):
            if event.action is UiAction.CHOOSE_PIN and state.pin_unavailable is None:
                return self._offer(state, state.tries_left, "ui.choose_pin", wrong_pin=False)
            if event.action is UiAction.CHOOSE_VISUAL and state.visual_possible:
                return self._start_visual(state, "ui.choose_visual")
            if event.action is UiAction.CANCEL:
                return self._take_card(state, "ui.cancel")
        if isinstance(event, TimerFired):
            return self._take_card(state, "timer.choose_check")
        return state, ()

    def _on_pin_entry(self, state: FlowState, event: Event) -> Step:
        assert isinstance(state, EnteringPin)
        common = self._session_common(state, event, None)
        if common is not None:
            return common
        if isinstance(event, Pressed):
            action = event.action
            if action is UiAction.DIGIT:
                return self._digit(state)
            if action is UiAction.ERASE and state.digits > 0:
                return self._go(
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
                    return self._go(state, choice, "ui.cancel", ClearPin(state.session))
                return self._take_card(state, "ui.cancel")
            if action is UiAction.CHOOSE_VISUAL and state.visual_possible:
                return self._start_visual(state, "ui.choose_visual")
        if isinstance(event, TimerFired):
            return self._take_card(state, "timer.pin_entry")
        return state, ()

    def _digit(self, state: EnteringPin) -> Step:
        if state.digits >= PIN_LENGTH:  # cannot happen: the fourth digit leaves this state
            return state, ()
        typed = state.digits + 1
        accept = (AcceptDigit(state.session), PlaySound(Sound.KEY))
        if typed < PIN_LENGTH:
            return self._go(state, replace(state, digits=typed), "ui.digit", *accept)
        if state.tries_left is None or state.tries_left < self._floor:
            # never reached: PIN entry is only offered above the floor; stay safe regardless
            return self._offer(state, state.tries_left, "pin.refused", wrong_pin=False)
        checking = Checking(
            language=state.language,
            session=state.session,
            facts=state.facts,
            tries_left=state.tries_left,
            wrong_pins=state.wrong_pins,
            mode="pin",
            verifying=True,
        )
        return self._go(state, checking, "pin.complete", *accept, VerifyPin(state.session))

    def _on_checking(self, state: FlowState, event: Event) -> Step:
        assert isinstance(state, Checking)
        common = self._session_common(state, event, state.mode)
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
            new_state, effects = self._offer(wrong, event.tries_left, "pin.wrong", wrong_pin=True)
            return new_state, (record, *effects)
        if isinstance(event, ServerAnswered) and not state.verifying:
            return self._answered(state, event.answer, state.mode, retried=state.retried)
        if isinstance(event, TimerFired):
            return self._notice(state, Notice.SERVER_ERROR, "timer.checking", mode=state.mode)
        return state, ()

    def _on_visual_wait(self, state: FlowState, event: Event) -> Step:
        assert isinstance(state, VisualCheckWait)
        common = self._session_common(state, event, "visual")
        if common is not None:
            return common
        if isinstance(event, StaffButton) and not state.confirming:
            return (
                replace(state, confirming=True),
                (
                    Record("staff.action", (("action", "visual_confirm"), ("via", "button"))),
                    ConfirmVisual(state.session, state.verification_id),
                ),
            )
        if isinstance(event, ServerAnswered):
            if event.answer.verification_id != state.verification_id:
                return state, ()
            return self._answered(state, event.answer, "visual", retried=True)
        if isinstance(event, Pressed) and event.action is UiAction.CANCEL:
            return self._take_card(state, "ui.cancel")
        if isinstance(event, TimerFired):
            return self._go(
                state,
                replace(state, alerts=state.alerts + 1),
                "timer.visual_wait",
                Record("staff.recall", (("alerts", state.alerts + 1),)),
                PlaySound(Sound.REMINDER_1),
            )
        return state, ()

    def _on_concluded(self, state: FlowState, event: Event) -> Step:
        assert isinstance(state, Concluded)
        if isinstance(event, CardRemoved) and state.card_present:
            return self._go(
                state,
                replace(state, card_present=False),
                "card.removed",
                Record("card.removed", (("during", state.name),)),
            )
        if isinstance(event, CardInserted) and not state.card_present:
            return self._reading(state, keep_language=False)
        done = isinstance(event, Pressed) and event.action is UiAction.DONE
        if done or isinstance(event, TimerFired):
            reason = "ui.done" if done else f"timer.{state.name}"
            if not state.card_present:
                return self._idle(state, reason)
            waiting = TakeCard(
                language=state.language,
                session=state.session,
                signal=lights_of(state),
                notice=screen_of(state).notice,
                result=replace(state, card_present=False),
            )
            if done:  # the reminders start from now
                return self._go(state, waiting, reason, end=True)
            return self._remind(state, waiting, reason)
        return state, ()

    def _remind(self, state: FlowState, waiting: TakeCard, reason: str) -> Step:
        """The next card-left reminder of the schedule: its level, lamp blinking and sound."""
        schedule = self.settings.reminders
        elapsed = next_sound_at(schedule, waiting.elapsed_s)
        level = level_at(schedule, elapsed)
        return self._go(
            state,
            replace(waiting, elapsed_s=elapsed, reminder_level=level),
            reason,
            Record("card.left", (("reminder_level", level),)),
            PlaySound(REMINDER_SOUNDS[level]),
            end=True,
        )

    def _on_take_card(self, state: FlowState, event: Event) -> Step:
        assert isinstance(state, TakeCard)
        if isinstance(event, CardRemoved):
            record = Record("card.removed", (("during", state.name),))
            if state.result is not None:  # the result again, readable for a moment
                return self._go(state, state.result, "card.removed", record)
            return self._idle(state, "card.removed", record)
        if isinstance(event, TimerFired):
            return self._remind(state, state, "timer.take_card")
        return state, ()

    def _on_removed_early(self, state: FlowState, event: Event) -> Step:
        if isinstance(event, CardInserted):
            return self._reading(state, keep_language=True)
        if isinstance(event, Pressed) and event.action in (UiAction.DONE, UiAction.CANCEL):
            return self._idle(state, "ui.done")
        if isinstance(event, TimerFired):
            return self._idle(state, "timer.removed_early")
        return state, ()

    def _on_reader_missing(self, state: FlowState, event: Event) -> Step:
        if isinstance(event, ReaderBack):
            return self._idle(state, "reader.back", Record("reader.back"))
        if isinstance(event, CardInserted):  # a card can only arrive on a reader that is there
            return self._reading(state, keep_language=False)
        if isinstance(event, TimerFired):
            return self._go(
                state,
                state,
                "timer.reader_missing",
                Record("reader.still_missing"),
                CheckReader(),
            )
        return state, ()

    def _on_staff_mode(self, state: FlowState, event: Event) -> Step:
        assert isinstance(state, StaffMode)
        if isinstance(event, CardInserted | CardRemoved):
            return replace(state, card_present=isinstance(event, CardInserted)), ()
        exit_pressed = isinstance(event, Pressed) and event.action is UiAction.STAFF_EXIT
        if exit_pressed or isinstance(event, TimerFired):
            return self._leave_staff_mode(state)
        return state, ()


_SESSION_EVENTS: Final = (CardRead, CardFailed, PinAccepted, PinWrong, ServerAnswered, ServerFailed)

_Handler: TypeAlias = Callable[[FlowMachine, FlowState, Event], Step]

_HANDLERS: Final[dict[type[FlowState], _Handler]] = {
    Idle: FlowMachine._on_idle,
    ChoosingLanguage: FlowMachine._on_languages,
    NoCardHelp: FlowMachine._on_no_card_help,
    ReadingCard: FlowMachine._on_reading,
    ChoosingCheck: FlowMachine._on_choosing,
    EnteringPin: FlowMachine._on_pin_entry,
    Checking: FlowMachine._on_checking,
    VisualCheckWait: FlowMachine._on_visual_wait,
    ResultOk: FlowMachine._on_concluded,
    NeedsStaff: FlowMachine._on_concluded,
    ErrorNotice: FlowMachine._on_concluded,
    ServerUnreachable: FlowMachine._on_concluded,
    TakeCard: FlowMachine._on_take_card,
    RemovedEarly: FlowMachine._on_removed_early,
    ReaderMissing: FlowMachine._on_reader_missing,
    StaffMode: FlowMachine._on_staff_mode,
}


def step(state: FlowState, event: Event, settings: FlowSettings | None = None) -> Step:
    """``FlowMachine(settings).step(state, event)``."""
    return FlowMachine(settings).step(state, event)
