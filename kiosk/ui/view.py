"""What each screen contains, described once for every layout and language.

:func:`describe` turns a :class:`~kiosk.flow.screens.Screen` into a :class:`View`: the tone,
the title and paragraphs as catalogue keys, an icon, the PIN dots and keypad, and the buttons
with the :class:`~kiosk.flow.screens.UiInput` each sends. It says nothing about pixels: the
layout engine (:mod:`kiosk.ui.arrange`) places a view on either panel.

A view shows as little personal data as a screen carries: a tries-left count, a notice
number, whether the check succeeded. Never a name or a number from the record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum

from kiosk.flow.notices import Notice
from kiosk.flow.screens import Language, PinUnavailable, Screen, ScreenId, UiAction, UiInput
from kiosk.ui.theme import Tone

#: Digits in a My Number card's user-authentication PIN.
PIN_LENGTH = 4
#: The highest reminder level of TAKE_CARD.
MAX_REMINDER = 3


class Icon(StrEnum):
    CARD_PLACE = "card_place"  # a card going down onto the reader
    CARD_TAKE = "card_take"  # a card lifted off the reader
    SPINNER = "spinner"  # working
    CHECK = "check"  # confirmed
    STAFF = "staff"  # a member of staff
    ALERT = "alert"  # the card cannot be used
    WARNING = "warning"  # the kiosk itself has a problem
    PIN_PAD = "pin_pad"  # a keypad: the PIN
    GLOBE = "globe"  # languages (on a button)


class Motion(StrEnum):
    """How the icon moves; a still screen is drawn once and then left alone."""

    STILL = "still"
    SPIN = "spin"  # the spinner turns
    PULSE = "pulse"  # a ring breathes around the icon
    URGENT = "urgent"  # a faster, stronger pulse


#: Seconds per cycle of each motion.
MOTION_PERIOD_S: dict[Motion, float] = {
    Motion.SPIN: 1.2,
    Motion.PULSE: 1.6,
    Motion.URGENT: 0.8,
}


class ParaStyle(StrEnum):
    NORMAL = "normal"
    STRONG = "strong"  # bold: a fact to notice (tries left)
    LEAD = "lead"  # bold and larger: the one thing to do now (take your card)
    ALERT = "alert"  # boxed, red: the PIN was wrong
    NOTE = "note"  # boxed, amber: why, or what to do later


class ButtonRole(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"


@dataclass(frozen=True)
class Msg:
    """A catalogue message; ``n`` picks the plural form and fills ``{n}``."""

    key: str
    n: int | None = None
    #: fills ``{date}``, written as the language writes dates
    on: date | None = None


@dataclass(frozen=True)
class Raw:
    """Text shown as it is (staff facts); never patient data."""

    text: str


Text = Msg | Raw


@dataclass(frozen=True)
class Para:
    text: Text
    style: ParaStyle = ParaStyle.NORMAL


@dataclass(frozen=True)
class Button:
    label: Text
    input: UiInput
    role: ButtonRole = ButtonRole.SECONDARY
    #: Enter on the keypad presses it
    default: bool = False
    icon: Icon | None = None
    #: draw the label in this language (the language chooser names each in its own script)
    language: Language | None = None
    #: marks the language in use
    selected: bool = False


@dataclass(frozen=True)
class View:
    screen_id: ScreenId
    tone: Tone
    title: Text
    body: tuple[Para, ...] = ()
    #: a notice's code, e.g. "K-201", printed on the title band
    code: str | None = None
    icon: Icon | None = None
    motion: Motion = Motion.STILL
    #: PIN_ENTRY: digits typed (shown as filled dots out of PIN_LENGTH)
    dots: int | None = None
    keypad: bool = False
    #: a grid of equal choices (the languages)
    choices: tuple[Button, ...] = ()
    #: the buttons along the bottom
    actions: tuple[Button, ...] = ()

    def buttons(self) -> tuple[Button, ...]:
        return self.choices + self.actions

    def default_button(self) -> Button | None:
        return next((b for b in self.buttons() if b.default), None)

    def messages(self) -> Iterator[Msg]:
        """Every catalogue message the view uses."""
        texts: list[Text] = [self.title, *(p.text for p in self.body)]
        texts += [b.label for b in self.buttons()]
        if self.keypad:
            texts.append(ERASE_LABEL)
        yield from (t for t in texts if isinstance(t, Msg))

    def inputs(self) -> frozenset[UiInput]:
        """Every input a touch or a key can send from this view."""
        offered = {b.input for b in self.buttons()}
        if self.keypad:
            offered |= {UiInput(UiAction.DIGIT, str(d)) for d in range(10)}
            offered.add(UiInput(UiAction.ERASE))
        return frozenset(offered)


ERASE_LABEL = Msg("button.erase")


def _back(*, default: bool = False) -> Button:
    return Button(Msg("button.back"), UiInput(UiAction.CANCEL), default=default)


def _close(action: UiAction = UiAction.DONE) -> Button:
    """The one "Close" of a language, on every screen the patient dismisses."""
    return Button(Msg("button.close"), UiInput(action), ButtonRole.PRIMARY, default=True)


def _call_staff() -> Button:
    """The patient asks for staff straight away (PIN and choice screens)."""
    return Button(Msg("button.call_staff"), UiInput(UiAction.CALL_STAFF), icon=Icon.STAFF)


#: Screens a visit ends on: each says "please take your card" as its last line.
FINAL_SCREENS = frozenset(
    {ScreenId.RESULT_OK, ScreenId.NEEDS_STAFF, ScreenId.ERROR, ScreenId.SERVER_UNREACHABLE}
)
#: Notices after which the patient is not sent to the desk: "take your card" alone.
_NOT_TO_THE_DESK = frozenset({Notice.CARD_REMOVED_EARLY, Notice.NOT_MY_NUMBER_CARD, Notice.NO_CARD})


def take_your_card(screen: Screen) -> Para:
    """The last line of a final screen: take the card (and go to the desk, when sent there)."""
    plain = screen.id is ScreenId.RESULT_OK or screen.notice in _NOT_TO_THE_DESK
    return Para(Msg("final.take_card" if plain else "final.take_card_to_desk"), ParaStyle.LEAD)


def _notice_tone(notice: Notice | None, fallback: Tone) -> Tone:
    if notice is None:
        return fallback
    return Tone.STAFF if notice.needs_staff else Tone.ERROR


def _screen_text(screen_id: ScreenId, part: str) -> Msg:
    return Msg(f"screen.{screen_id.value}.{part}")


def _code(screen: Screen) -> str | None:
    """The notice code, with the staff call's short number when the screen called staff."""
    if screen.notice is None:
        return None
    if screen.visit is None:
        return screen.notice.code
    return f"{screen.notice.code} #{screen.visit % 1000:03d}"


def _notice_or_screen(
    screen: Screen, *, tone: Tone, icon: Icon, actions: tuple[Button, ...]
) -> View:
    """A screen that shows its notice when it has one, else its own words; a final screen
    ends with "please take your card"."""
    last = (take_your_card(screen),) if screen.id in FINAL_SCREENS else ()
    if screen.notice is not None:
        return View(
            screen.id,
            tone=_notice_tone(screen.notice, tone),
            title=Msg(f"{screen.notice.key}.title"),
            body=(Para(Msg(f"{screen.notice.key}.advice")), *last),
            code=_code(screen),
            icon=icon,
            actions=actions,
        )
    return View(
        screen.id,
        tone=tone,
        title=_screen_text(screen.id, "title"),
        body=(Para(_screen_text(screen.id, "body")), *last),
        icon=icon,
        actions=actions,
    )


def _idle(screen: Screen) -> View:
    return View(
        screen.id,
        tone=Tone.READY,
        title=_screen_text(screen.id, "title"),
        body=(Para(_screen_text(screen.id, "body")),),
        icon=Icon.CARD_PLACE,
        actions=(
            Button(Msg("button.no_card"), UiInput(UiAction.NO_CARD)),
            Button(Msg("button.languages"), UiInput(UiAction.OPEN_LANGUAGES), icon=Icon.GLOBE),
        ),
    )


def _languages(screen: Screen) -> View:
    return View(
        screen.id,
        tone=Tone.READY,
        title=_screen_text(screen.id, "title"),
        choices=tuple(
            Button(
                Msg("language.name"),
                UiInput(UiAction.SET_LANGUAGE, language.value),
                language=language,
                selected=language is screen.language,
            )
            for language in Language
        ),
        actions=(_back(default=True),),
    )


def _no_card_help(screen: Screen) -> View:
    return View(
        screen.id,
        tone=Tone.STAFF,
        title=_screen_text(screen.id, "title"),
        body=(Para(_screen_text(screen.id, "body")),),
        icon=Icon.STAFF,
        actions=(_close(UiAction.CANCEL),),
    )


def _busy(screen: Screen) -> View:
    return View(
        screen.id,
        tone=Tone.BUSY,
        title=_screen_text(screen.id, "title"),
        body=(Para(_screen_text(screen.id, "body")),),
        icon=Icon.SPINNER,
        motion=Motion.SPIN,
    )


def _tries_para(tries_left: int | None) -> tuple[Para, ...]:
    if tries_left is None:
        return ()
    return (Para(Msg("pin.tries_left", tries_left), ParaStyle.STRONG),)


def _choose_check(screen: Screen) -> View:
    visual = Button(Msg("button.choose_visual"), UiInput(UiAction.CHOOSE_VISUAL))
    if screen.pin_unavailable is not None:
        key = f"pin_unavailable.{screen.pin_unavailable.value}"
        reason = Msg(key, max(screen.tries_left or 1, 1))
        if screen.pin_unavailable is not PinUnavailable.AT_FLOOR:
            reason = Msg(key)
        return View(
            screen.id,
            tone=Tone.READY,
            title=_screen_text(screen.id, "title_visual_only"),
            body=(Para(reason, ParaStyle.NOTE),),
            icon=Icon.STAFF,
            actions=(
                Button(visual.label, visual.input, ButtonRole.PRIMARY, default=True),
                _call_staff(),
            ),
        )
    return View(
        screen.id,
        tone=Tone.READY,
        title=_screen_text(screen.id, "title"),
        body=(Para(_screen_text(screen.id, "body")), *_tries_para(screen.tries_left)),
        icon=Icon.PIN_PAD,
        actions=(
            Button(
                Msg("button.choose_pin"),
                UiInput(UiAction.CHOOSE_PIN),
                ButtonRole.PRIMARY,
                default=True,
            ),
            visual,
            _call_staff(),
        ),
    )


def _pin_entry(screen: Screen) -> View:
    status: tuple[Para, ...]
    if screen.wrong_pin and screen.tries_left is not None:
        status = (Para(Msg("pin.wrong", screen.tries_left), ParaStyle.ALERT),)
    elif screen.wrong_pin:
        status = (Para(Msg("pin.wrong_retry"), ParaStyle.ALERT),)
    else:
        status = _tries_para(screen.tries_left)
    return View(
        screen.id,
        tone=Tone.READY,
        title=_screen_text(screen.id, "title"),
        body=(Para(_screen_text(screen.id, "body")), *status),
        dots=min(max(screen.digits_typed, 0), PIN_LENGTH),
        keypad=True,
        actions=(_back(), _call_staff()),
    )


def _visual_wait(screen: Screen) -> View:
    return View(
        screen.id,
        tone=Tone.STAFF,
        title=_screen_text(screen.id, "title"),
        body=(Para(_screen_text(screen.id, "body")),),
        icon=Icon.STAFF,
        motion=Motion.PULSE,
    )


def _result_ok(screen: Screen) -> View:
    """Confirmed; one line on the certificate when it needs renewing (else: wait to be
    called); take your card."""
    expiry = screen.certificate_expiry
    if expiry is not None:
        part = "expired" if expiry.expired else "expires"
        middle = Para(Msg(f"screen.result_ok.{part}", on=expiry.on), ParaStyle.NOTE)
    elif screen.renew_certificate:
        middle = Para(_screen_text(screen.id, "renew"), ParaStyle.NOTE)
    else:
        middle = Para(_screen_text(screen.id, "body"))
    title = _screen_text(screen.id, "title")
    if screen.copay_percent is not None:  # the clinic shows it: in the title, still 3 lines
        title = Msg("screen.result_ok.title_copay", n=screen.copay_percent)
    return View(
        screen.id,
        tone=Tone.SUCCESS,
        title=title,
        body=(middle, take_your_card(screen)),
        icon=Icon.CHECK,
    )


def _needs_staff(screen: Screen) -> View:
    return _notice_or_screen(screen, tone=Tone.STAFF, icon=Icon.STAFF, actions=(_close(),))


def _error(screen: Screen) -> View:
    view = _notice_or_screen(screen, tone=Tone.ERROR, icon=Icon.ALERT, actions=(_close(),))
    # an error screen stays red whatever the notice: the card cannot be used here
    return replace(view, tone=Tone.ERROR)


def _take_card(screen: Screen) -> View:
    level = min(max(screen.reminder_level, 0), MAX_REMINDER)
    return View(
        screen.id,
        tone=Tone.READY if level < 2 else Tone.STAFF,
        title=Msg(f"screen.take_card.level_{level}.title"),
        body=(Para(Msg(f"screen.take_card.level_{level}.body"), ParaStyle.LEAD),),
        icon=Icon.CARD_TAKE,
        motion=Motion.PULSE if level < 2 else Motion.URGENT,
    )


def _removed_early(screen: Screen) -> View:
    view = _notice_or_screen(screen, tone=Tone.STAFF, icon=Icon.CARD_PLACE, actions=(_close(),))
    # amber, never red: nothing is wrong with the card, the patient only places it again
    return replace(view, tone=Tone.STAFF)


def _reader_missing(screen: Screen) -> View:
    return _notice_or_screen(screen, tone=Tone.STAFF, icon=Icon.WARNING, actions=())


def _server_unreachable(screen: Screen) -> View:
    return _notice_or_screen(screen, tone=Tone.STAFF, icon=Icon.WARNING, actions=(_close(),))


def _staff_mode(screen: Screen) -> View:
    return View(
        screen.id,
        tone=Tone.STAFF_MODE,
        title=_screen_text(screen.id, "title"),
        body=(
            Para(_screen_text(screen.id, "body")),
            *(Para(Raw(line), ParaStyle.STRONG) for line in screen.staff_lines),
        ),
        actions=(
            Button(
                Msg("button.staff_exit"),
                UiInput(UiAction.STAFF_EXIT),
                ButtonRole.PRIMARY,
                default=True,
            ),
        ),
    )


_DESCRIBE: dict[ScreenId, Callable[[Screen], View]] = {
    ScreenId.IDLE: _idle,
    ScreenId.LANGUAGES: _languages,
    ScreenId.NO_CARD_HELP: _no_card_help,
    ScreenId.READING: _busy,
    ScreenId.CHOOSE_CHECK: _choose_check,
    ScreenId.PIN_ENTRY: _pin_entry,
    ScreenId.CHECKING: _busy,
    ScreenId.VISUAL_WAIT: _visual_wait,
    ScreenId.RESULT_OK: _result_ok,
    ScreenId.NEEDS_STAFF: _needs_staff,
    ScreenId.ERROR: _error,
    ScreenId.TAKE_CARD: _take_card,
    ScreenId.REMOVED_EARLY: _removed_early,
    ScreenId.READER_MISSING: _reader_missing,
    ScreenId.SERVER_UNREACHABLE: _server_unreachable,
    ScreenId.STAFF_MODE: _staff_mode,
}


def describe(screen: Screen) -> View:
    """The view of ``screen``, the same for both layouts and all languages."""
    return _DESCRIBE[screen.id](screen)


def offered_inputs(screen: Screen) -> frozenset[UiInput]:
    """What the patient (or staff) can send from ``screen``: for the flow's own tests."""
    return describe(screen).inputs()
