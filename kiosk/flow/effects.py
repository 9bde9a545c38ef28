"""What the machine asks for: the effects the runner executes, in order.

The screen, the lights and the buzzer; one timer per state (:class:`StartTimer`); records for
the outbox (:class:`Record`: never a PIN, never personal data); staff calls reported to the
clinic server (:class:`CallStaff`, :class:`ClearStaffCall`); and the card and server work of a
card session, ended by :class:`EndSession`, which wipes whatever the session held.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from contract.challenge import Mode
from contract.notices import Notice, StaffCallReason
from kiosk.flow.screens import Screen
from kiosk.hw.signals import LightSignal, Sound

# --- the patient's screen, the lights, the buzzer, the timer -----------------------------------


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


# --- the log -----------------------------------------------------------------------------------

RecordValue: TypeAlias = str | int | bool | None


@dataclass(frozen=True)
class Record:
    """Append to the outbox: ``kind`` (``flow.transition``...) and a flat payload."""

    kind: str
    items: tuple[tuple[str, RecordValue], ...] = ()

    @property
    def payload(self) -> dict[str, RecordValue]:
        return dict(self.items)


# --- the card and the clinic server, for one card session --------------------------------------


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
class CallStaff:
    """The screen tells the patient staff were called: report the call to the clinic server
    (retried until it arrives). ``visit`` is the short number the screen shows with it."""

    visit: int
    reason: StaffCallReason
    notice: Notice | None = None
    verification_id: str | None = None


@dataclass(frozen=True)
class ClearStaffCall:
    """The screen no longer says staff were called (the kiosk went on by itself)."""

    visit: int


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
    | CallStaff
    | ClearStaffCall
    | EndSession
)

Effects: TypeAlias = tuple[Effect, ...]
