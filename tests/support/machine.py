"""What the machine tests share: a driver that applies events, every kind of event, the records
that came out."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from kiosk.flow.effects import Effect, Record
from kiosk.flow.events import (
    Answer,
    CardFacts,
    CardFailed,
    CardInserted,
    CardLifted,
    CardRead,
    ConfirmRefused,
    Event,
    PinAccepted,
    PinWrong,
    Pressed,
    ReaderBack,
    ReaderLost,
    ServerAnswered,
    ServerFailed,
    StaffButtonPressed,
    TimerFired,
)
from kiosk.flow.machine import FlowMachine
from kiosk.flow.notices import BY_PATIENT_MESSAGE
from kiosk.flow.screens import Language, UiAction
from kiosk.flow.settings import FlowSettings
from kiosk.flow.states import FlowState, VisualCheckWait

MYNUMBER = CardFacts("mynumber_card", 3, True)

VID = "a" * 32
ELIGIBLE = Answer(VID, False, "eligible", "eligible", 1)

FACTS = (
    MYNUMBER,
    CardFacts("mynumber_card", 2, True),
    CardFacts("mynumber_card", 1, True),
    CardFacts("mynumber_card", 0, True),
    CardFacts("mynumber_card", None, True),
    CardFacts("android", 3, False),
    CardFacts("android", 1, False),
    CardFacts("iphone", 0, True),
    CardFacts("iphone", 3, True),
    CardFacts("iphone", 3, True, pin_verified=True),
)


def answers(verification_id: str = "v" * 32) -> tuple[Answer, ...]:
    done = [
        Answer(verification_id, False, "eligible", "eligible", 1),
        Answer(verification_id, False, "eligible.renew_certificate", "eligible.in_grace", 1),
        Answer(verification_id, False, "retry", "nonce.expired"),
        Answer(verification_id, True, "wait_staff", "visual.awaiting_staff"),
        Answer(verification_id, False, "something.new", "unknown.reason"),
    ]
    done += [Answer(verification_id, False, message, "x") for message in BY_PATIENT_MESSAGE]
    return tuple(done)


CARD_CODES = ("card.removed", "card.reader_gone", "card.not_jpki", "card.protocol", "card.timeout")


def events_for(state: FlowState) -> Iterator[Event]:
    """Every kind of event, addressed to this state's session and timer."""
    session = state.session
    vid = state.verification_id if isinstance(state, VisualCheckWait) else "v" * 32
    yield CardInserted()
    yield CardLifted()
    yield ReaderLost()
    yield ReaderBack()
    yield StaffButtonPressed()
    yield StaffButtonPressed(long=True)
    yield TimerFired(state.timer)
    for facts in FACTS:
        yield CardRead(session, facts)
    for code in CARD_CODES:
        yield CardFailed(session, code)
    yield PinAccepted(session)
    for tries in (0, 1, 2):
        yield PinWrong(session, tries)
    for answer in answers(vid):
        yield ServerAnswered(session, answer)
    yield ServerFailed(session, "server.unreachable", True)
    yield ServerFailed(session, "server.rejected", False)
    yield ConfirmRefused(session)
    for action in UiAction:
        if action is UiAction.SET_LANGUAGE:
            yield Pressed(action, Language.EN)
        else:
            yield Pressed(action)


@dataclass
class Driver:
    """Feeds events to the machine and keeps what came out."""

    machine: FlowMachine = field(default_factory=FlowMachine)
    state: FlowState = field(init=False)
    effects: list[Effect] = field(default_factory=list)
    last: tuple[Effect, ...] = ()

    def __post_init__(self) -> None:
        self.state, self.last = self.machine.initial()
        self.effects.extend(self.last)

    @classmethod
    def with_settings(cls, settings: FlowSettings) -> Driver:
        return cls(FlowMachine(settings))

    def send(self, *events: Event) -> FlowState:
        for event in events:
            self.state, self.last = self.machine.step(self.state, event)
            self.effects.extend(self.last)
        return self.state

    def timeout(self) -> FlowState:
        return self.send(TimerFired(self.state.timer))

    def read(self, facts: CardFacts = MYNUMBER) -> FlowState:
        self.send(CardInserted())
        return self.send(CardRead(self.state.session, facts))

    def digits(self, count: int) -> FlowState:
        for _ in range(count):
            self.send(Pressed(UiAction.DIGIT))
        return self.state

    def answer(self, answer: Answer) -> FlowState:
        return self.send(ServerAnswered(self.state.session, answer))

    def of_type(self, kind: type) -> list:
        return [e for e in self.last if isinstance(e, kind)]

    def all_of_type(self, kind: type) -> list:
        return [e for e in self.effects if isinstance(e, kind)]


def records(driver: Driver, kind: str) -> list[dict]:
    """The payloads of every record of one kind, in order."""
    return [e.payload for e in driver.effects if isinstance(e, Record) and e.kind == kind]
