"""What the patient sees and can do: the contract between the flow and the touch screen.

The state machine decides *which* screen with *which* facts (a :class:`Screen`, a frozen
value); the UI decides how it looks in each layout and language and turns touches and key
presses into :class:`UiInput` values. Neither knows the other's internals, so the flow is
tested without pygame and every screen is drawn without a card.

A screen carries as little personal data as possible: never a name, an insurer number or a
record field, only what the patient needs to act (tries left, a notice number, whether the
copay is confirmed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Protocol

from kiosk.flow.notices import Notice


class Language(StrEnum):
    """The languages the patient can switch to; Japanese after every patient."""

    JA = "ja"
    EN = "en"
    ZH = "zh-Hans"
    KO = "ko"
    VI = "vi"
    PT = "pt"


DEFAULT_LANGUAGE = Language.JA


class ScreenId(StrEnum):
    IDLE = "idle"  # place your card; buttons: no card, language
    LANGUAGES = "languages"  # the language chooser
    NO_CARD_HELP = "no_card_help"  # what to show at the desk; staff called (amber)
    READING = "reading"  # reading the card: do not move it
    CHOOSE_CHECK = "choose_check"  # PIN (default) or staff visual check
    PIN_ENTRY = "pin_entry"  # tries left shown before the first digit
    CHECKING = "checking"  # the card signs, the server answers
    VISUAL_WAIT = "visual_wait"  # staff compare photo and face (amber blinking)
    RESULT_OK = "result_ok"  # eligible; take your card
    NEEDS_STAFF = "needs_staff"  # a notice that hands over to the desk (amber)
    ERROR = "error"  # a notice with its number and plain advice (red)
    TAKE_CARD = "take_card"  # the card is still on the reader (escalating reminder)
    REMOVED_EARLY = "removed_early"  # the card left before the end
    READER_MISSING = "reader_missing"  # no reader, or pcscd gone
    SERVER_UNREACHABLE = "server_unreachable"  # staff help with 資格確認書 or self-declaration
    STAFF_MODE = "staff_mode"  # for staff: status and a way back


class UiAction(StrEnum):
    """What a button (or key) asks for."""

    NO_CARD = "no_card"
    OPEN_LANGUAGES = "open_languages"
    SET_LANGUAGE = "set_language"  # value: a Language
    CHOOSE_PIN = "choose_pin"
    CHOOSE_VISUAL = "choose_visual"
    DIGIT = "digit"  # value: "0".."9"
    ERASE = "erase"  # the correction key
    CANCEL = "cancel"  # back (from PIN entry, the language chooser, help screens)
    CALL_STAFF = "call_staff"  # the patient asks for staff (PIN and choice screens)
    DONE = "done"  # the patient read the message
    STAFF_EXIT = "staff_exit"  # leave staff mode


@dataclass(frozen=True)
class UiInput:
    action: UiAction
    value: str | None = None


class PinUnavailable(StrEnum):
    """Why the kiosk offers only the staff visual check."""

    LOCKED = "locked"
    AT_FLOOR = "at_floor"  # the policy keeps the last try for the municipal office
    NO_PIN = "no_pin"  # a face-authentication card


@dataclass(frozen=True)
class CertificateExpiry:
    """When the card's user certificate expires (its notAfter, a date in Japan) and whether
    that day has passed: shown from three months before to three months after it."""

    on: date
    expired: bool


@dataclass(frozen=True)
class Screen:
    """One screen and the facts it shows. Equal screens need no redraw."""

    id: ScreenId
    language: Language = DEFAULT_LANGUAGE
    #: PIN_ENTRY and CHOOSE_CHECK: tries left on the card's PIN.
    tries_left: int | None = None
    #: PIN_ENTRY: how many digits are typed (shown as dots, never the digits).
    digits_typed: int = 0
    #: PIN_ENTRY: the previous PIN was wrong.
    wrong_pin: bool = False
    #: CHOOSE_CHECK: set when only the visual check is offered, with the reason.
    pin_unavailable: PinUnavailable | None = None
    #: NEEDS_STAFF and ERROR (and SERVER_UNREACHABLE, READER_MISSING): the numbered notice.
    notice: Notice | None = None
    #: RESULT_OK: the certificate expired but is in its grace period: renew at the city office.
    renew_certificate: bool = False
    #: RESULT_OK: the certificate expires (or expired) within three months: when, and renew.
    certificate_expiry: CertificateExpiry | None = None
    #: RESULT_OK: the copay ratio in percent, only when the clinic turned it on.
    copay_percent: int | None = None
    #: TAKE_CARD: 0 first reminder, rising to 3 as the card stays on the reader.
    reminder_level: int = 0
    #: STAFF_MODE: one-line facts for staff (reader, server, outbox), no patient data.
    staff_lines: tuple[str, ...] = ()
    #: a screen that says staff were called: the call's short number, quoted at the desk.
    visit: int | None = None


class PatientDisplay(Protocol):
    """The touch screen, as the flow runner sees it. Implemented by :mod:`kiosk.ui`."""

    def start(self, on_input: Callable[[UiInput], None]) -> None:
        """Open the display; ``on_input`` is called (from the UI thread) for each input."""

    def show(self, screen: Screen) -> None:
        """Show ``screen``; thread-safe, returns at once; no redraw if nothing changed."""

    def stop(self) -> None:
        """Close the display and stop its thread."""
