"""``kiosk unenrolled``: what a unit without a usable identity shows, until it is stopped.

The image starts it instead of ``kiosk run`` when the identity folder is empty (``missing``)
or the bundle on the boot partition did not pass ``kiosk enrol`` (``broken``). It reads no
``kiosk.toml`` and opens nothing that needs an identity: no card reader, no server, no outbox.

- The screen, drawn by the kiosk's own renderer (:mod:`kiosk.ui.render`): in Japanese and
  English, that the unit is not enrolled or that its bundle is broken (and why), and what the
  maintainer does next (``provisioning/enrol``, hardware.md). Patients read: ask at the desk.
- The lights: two lamps take turns, which no patient signal does (those light one lamp at a
  time): amber and blue, once a second, for ``missing``; red and amber, twice as fast, for
  ``broken`` (:data:`MAINTAINER_PATTERNS`). The buzzer stays silent.
- systemd: READY=1 once the screen is up, watchdog pings while it waits, STOPPING=1 on
  SIGTERM (:mod:`kiosk.supervision`), as ``kiosk run`` does.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import signal
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from types import FrameType
from typing import Any

import gpiozero
import pygame

from contract.errors import ConfigError
from kiosk.flow.screens import Screen, ScreenId
from kiosk.hw.backend import make_pin_factory, resolve_backend
from kiosk.hw.config import GpioConfig
from kiosk.hw.patterns import Lamp
from kiosk.ui.fonts import Fonts
from kiosk.ui.layouts import Layout
from kiosk.ui.render import Frame, draw
from kiosk.ui.screen_mode import open_screen, present
from kiosk.ui.theme import Tone
from kiosk.ui.view import Para, ParaStyle, Raw, View

log = logging.getLogger(__name__)


class Reason(StrEnum):
    MISSING = "missing"  # no bundle and no identity
    BROKEN = "broken"  # a bundle that did not pass its checks


@dataclass(frozen=True)
class MaintainerPattern:
    """Two lamps lit in turn, each for ``half_s`` seconds."""

    first: Lamp
    second: Lamp
    half_s: float


MAINTAINER_PATTERNS: dict[Reason, MaintainerPattern] = {
    Reason.MISSING: MaintainerPattern(Lamp.AMBER, Lamp.BLUE, 0.5),
    Reason.BROKEN: MaintainerPattern(Lamp.RED, Lamp.AMBER, 0.25),
}

#: Longest reason shown on screen, in columns (a full-width character takes two); the whole
#: of it is in the journal.
MAX_DETAIL_COLUMNS = 120

_TITLE = {
    Reason.MISSING: "未登録の端末です · This unit is not enrolled",
    Reason.BROKEN: "登録データが壊れています · The enrolment bundle is broken",
}
_WHAT = {
    Reason.MISSING: (
        "この端末には登録データ（バンドル）がありません。",
        "This unit has no enrolment bundle.",
    ),
    Reason.BROKEN: (
        "SDカードの登録データ（バンドル）が確認できません。",
        "The enrolment bundle did not pass its checks.",
    ),
}
_NEXT_STEPS = (
    "保守担当者へ：device issue --bundle で作り、provisioning/enrol で入れて再起動（hardware.md）",
    "Maintainer: clinic-server device issue NAME --bundle FILE, then provisioning/enrol, "
    "restart (hardware.md)",
)
_PATIENTS = "受付にお声がけください · Please ask at the desk"


def _columns(char: str) -> int:
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def shortened(detail: str, columns: int = MAX_DETAIL_COLUMNS) -> str:
    """``detail`` on one line, cut to ``columns`` with an ellipsis when longer."""
    text = " ".join(detail.split())
    if sum(map(_columns, text)) <= columns:
        return text
    used, kept = 1, []
    for char in text:
        used += _columns(char)
        if used > columns:
            break
        kept.append(char)
    return "".join(kept) + "…"


def unenrolled_view(reason: Reason, detail: str | None = None) -> View:
    """The maintainer's screen: what is wrong and what to do, in Japanese and English."""
    if reason is Reason.BROKEN and detail:  # the title says what; the reason says why
        body = [Para(Raw(f"理由 / Reason: {shortened(detail)}"), ParaStyle.ALERT)]
    else:
        body = [Para(Raw(line), ParaStyle.STRONG) for line in _WHAT[reason]]
    body += [
        Para(Raw(_NEXT_STEPS[0]), ParaStyle.NOTE),
        Para(Raw(_NEXT_STEPS[1])),
        Para(Raw(_PATIENTS)),
    ]
    return View(
        ScreenId.STAFF_MODE,
        tone=Tone.ERROR if reason is Reason.BROKEN else Tone.STAFF_MODE,
        title=Raw(_TITLE[reason]),
        body=tuple(body),
    )


def draw_unenrolled(
    reason: Reason,
    detail: str | None,
    layout: Layout,
    fonts: Fonts,
    surface: pygame.Surface | None = None,
) -> Frame:
    """The screen painted for ``layout`` (pure: no display needed, like :func:`draw`)."""
    view = unenrolled_view(reason, detail)
    return draw(Screen(ScreenId.STAFF_MODE), layout, fonts, surface=surface, view=view)


class MaintainerLights:
    """The four status LEDs showing a :class:`MaintainerPattern` on gpiozero's own thread."""

    def __init__(self, gpio: GpioConfig, pattern: MaintainerPattern, pin_factory: Any) -> None:
        pins = {lamp: getattr(gpio, lamp.value) for lamp in Lamp}
        self.pattern = pattern
        self.board = gpiozero.LEDBoard(
            **{lamp.value: pin for lamp, pin in pins.items()},
            active_high=gpio.leds_active_high,
            initial_value=False,
            pin_factory=pin_factory,
            _order=tuple(lamp.value for lamp in Lamp),  # the values below are in this order
        )
        self._lamps = list(Lamp)

    def _frames(self) -> Iterator[tuple[bool, ...]]:
        first = tuple(lamp is self.pattern.first for lamp in self._lamps)
        second = tuple(lamp is self.pattern.second for lamp in self._lamps)
        return itertools.cycle((first, second))

    def start(self) -> None:
        self.board.source_delay = self.pattern.half_s
        self.board.source = self._frames()

    def close(self) -> None:
        self.board.source = None
        self.board.off()
        self.board.close()


def open_lights(gpio: GpioConfig, reason: Reason) -> MaintainerLights | None:
    """The lights, or None (logged) when the pins cannot be opened: the screen still shows."""
    try:
        factory = make_pin_factory(resolve_backend(gpio), gpio.chip)
        lights = MaintainerLights(gpio, MAINTAINER_PATTERNS[reason], factory)
    except (ConfigError, gpiozero.GPIOZeroError, OSError) as exc:
        log.error("the status lights cannot show the enrolment pattern: %s", exc)
        return None
    lights.start()
    return lights


@contextlib.contextmanager
def _open_window(layout: Layout, *, fullscreen: bool) -> Iterator[pygame.Surface]:
    pygame.display.init()
    try:
        yield open_screen(layout.size, fullscreen=fullscreen)
    finally:
        pygame.display.quit()


def show_until_stopped(
    reason: Reason,
    detail: str | None,
    layout: Layout,
    gpio: GpioConfig,
    *,
    fullscreen: bool = True,
    stop: threading.Event | None = None,
) -> None:
    """Show the screen and the lights until SIGTERM (or ``stop``), telling systemd."""
    from kiosk.supervision import Notifier, Watchdog

    stop = stop or threading.Event()
    notifier = Notifier.from_env()
    watchdog = Watchdog.from_env(notifier)
    log.error(
        "not enrolled (%s)%s: the kiosk does not start; see hardware.md, Enrolling a unit",
        reason.value,
        f": {detail}" if detail else "",
        extra={"ENROLMENT": reason.value},
    )
    lights = open_lights(gpio, reason)
    try:
        with _signals_set(stop), contextlib.ExitStack() as screen:
            try:
                window = screen.enter_context(_open_window(layout, fullscreen=fullscreen))
                present(window, draw_unenrolled(reason, detail, layout, Fonts()).surface)
            except (pygame.error, ConfigError) as exc:  # the lights still say it
                log.error("the screen cannot show the enrolment message: %s", exc)
                screen.close()
                window = None
            notifier.ready(f"not enrolled: {reason.value}")
            interval = min(watchdog.max_block_s or 1.0, 1.0)
            while not stop.wait(interval):
                if window is not None:
                    pygame.event.pump()  # keeps the video back-end's queue empty
                watchdog.progress()
            notifier.stopping("stopping")
    finally:
        if lights is not None:
            lights.close()


@contextlib.contextmanager
def _signals_set(stop: threading.Event) -> Iterator[None]:
    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only; a caller in a thread sets ``stop``
        return
    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
