"""``kiosk demo`` with a display: the kiosk in a window, the terminal as the patient's hand.

The window is the kiosk's own touch screen (``PygameDisplay`` in a window): click or touch it,
or type on the keyboard (the digits type the PIN, Backspace corrects, Enter and Escape press the
default and the back buttons). The terminal places and takes cards and stands in for the staff
button, so its keys never collide with the PIN keys::

    1-9 0 a-j   place the card of that profile (the one on the reader is taken off first)
    r           take the card off the reader
    s           staff button, short press (confirms a visual check)
    l           staff button, long press (staff mode)
    q           quit

The terminal prints how each visit ended (the route read off the screens, with the notice
code) and each press of a staff button: the kiosk's physical one (``s``, ``l``) and the
"call staff" button on the touch screen.

When the machine has a sound output the kiosk speaks: the voice prompts are rendered once into
``$XDG_CACHE_HOME/onshi-kiosk/demo-voice`` (``~/.cache/...``; a rebuild renders only what
changed) and played as on a kiosk. Without sound, or without Open JTalk and espeak-ng, the demo
says so and runs silent.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import sys
import tempfile
import termios
import threading
import tty
from collections.abc import Callable, Iterator
from pathlib import Path

from kiosk.flow.screens import PatientDisplay, Screen, ScreenId, UiAction, UiInput
from testbed.patient import route_shown
from testbed.screen_log import FINAL_SCREENS

KEYS = "1234567890abcdefghij"


class Narrator:
    """A :class:`PatientDisplay` around the window: prints how each visit ended and each
    touch of the "call staff" button, then passes everything on."""

    def __init__(self, inner: PatientDisplay, say: Callable[[str], None] = print) -> None:
        self.inner = inner
        self.say = say
        self._visit: list[Screen] = []
        self._told = False

    def start(self, on_input: Callable[[UiInput], None]) -> None:
        def heard(ui: UiInput) -> None:
            if ui.action is UiAction.CALL_STAFF:
                self.say("call-staff button touched on the screen")
            on_input(ui)

        self.inner.start(heard)

    def show(self, screen: Screen) -> None:
        if screen.id is ScreenId.IDLE:
            self._visit, self._told = [], False
        elif not self._visit or self._visit[-1] != screen:
            self._visit.append(screen)
            if screen.id in FINAL_SCREENS and not self._told:
                self._told = True
                self.say(outcome_line(self._visit))
        self.inner.show(screen)

    def stop(self) -> None:
        self.inner.stop()


def outcome_line(screens: list[Screen]) -> str:
    """One line for the terminal: the route of a visit, its last screen and notice code."""
    final = next(s for s in reversed(screens) if s.id in FINAL_SCREENS)
    code = f" {final.notice.code}" if final.notice is not None else ""
    return f"outcome: {route_shown(screens)} ({final.id.value}{code})"


def has_sound() -> bool:
    """Whether SDL can open a sound output here (a sound card, PulseAudio or PipeWire)."""
    import pygame

    if os.environ.get("SDL_AUDIODRIVER") == "dummy":
        return False
    try:
        pygame.mixer.init()
    except pygame.error:
        return False
    pygame.mixer.quit()
    return True


def demo_voice(say: Callable[[str], None] = print) -> Path | None:
    """The voice prompts for the window demo, rendered (incrementally) into the user's cache;
    None, after saying why, when the demo must run silent."""
    from kiosk.ui import voice

    if not has_sound():
        say("no sound output here: the kiosk runs silent")
        return None
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = cache / "onshi-kiosk" / "demo-voice"
    say(f"voice guidance: rendering the prompts into {folder} (the first run takes a while)")
    try:
        report = voice.build(folder, voice.plan(), prune=True)
    except voice.VoiceBuildError as exc:
        say(f"no voice guidance: {exc}")
        return None
    say(f"voice guidance: {len(report.rendered)} rendered, {len(report.unchanged)} unchanged")
    return folder


@contextlib.contextmanager
def _keys() -> Iterator[None]:
    """Single key presses from the terminal (no Enter needed), restored afterwards."""
    if not sys.stdin.isatty():
        yield
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _next_key(stop: threading.Event) -> str | None:
    while not stop.is_set():
        ready, _, _ = select.select([sys.stdin], [], [], 0.2)
        if ready:
            key = sys.stdin.read(1)
            return key if key else "q"
    return None


def run_window(args: argparse.Namespace) -> int:
    from kiosk.app import Parts, build_kiosk
    from kiosk.config import load_config
    from kiosk.sim.card import VirtualJpkiCard
    from kiosk.sim.vpcd import InsertedCard, insert
    from testbed.environment import DEMO_PORT, environment, write_kiosk_config
    from testbed.local_clinic import PASSWORD
    from testbed.staff import StaffHand

    voice_dir = demo_voice()
    work = Path(tempfile.mkdtemp(prefix="onshi-demo-window-"))
    with environment(args.out or work) as env:
        write_kiosk_config(
            env.config_path,
            device=env.device,
            server_url=env.clinic.url,
            outbox=(args.out or work) / "kiosk" / "outbox.db",
            layout=args.layout,
            video_driver=None,
            voice_dir=voice_dir,
            timeouts={"pin_entry_s": 60.0, "after_removal_s": 4.0},
        )
        config = load_config(env.config_path)
        kiosk = build_kiosk(config, Parts(wrap_display=Narrator))
        button = StaffHand(
            kiosk.hardware.pin_factory,
            config.gpio.staff_button,
            bounce_s=config.gpio.button_bounce_s,
        )
        seen: set[str] = set()
        profiles = []
        for card in env.population.cards:
            if card.outcome not in seen:
                seen.add(card.outcome)
                profiles.append(card)
        print("Onshi Kiosk demo: the kiosk is in its window; this terminal is your hand.")
        print(f"staff dashboard: {env.clinic.staff_url}  (admin / {PASSWORD}, a local demo)")
        for label, card in zip(KEYS, profiles, strict=False):
            pin = card.load_profile().pin or "-"
            print(f"  {label}  {card.outcome:32} PIN {pin}   expected: {card.expected_route}")
        print("  r  take the card off   s  staff button   l  long press (staff mode)   q  quit")
        slot: InsertedCard | None = None
        stop = threading.Event()
        with kiosk, _keys():
            try:
                while True:
                    key = _next_key(stop)
                    if key is None or key == "q":
                        break
                    if key in KEYS[: len(profiles)]:
                        if slot is not None:
                            slot.remove()
                        card = profiles[KEYS.index(key)]
                        print(f"placing {card.outcome}")
                        slot = insert(VirtualJpkiCard(card.load_profile()), port=DEMO_PORT)
                    elif key == "r" and slot is not None:
                        slot.remove()
                        slot = None
                        print("card taken off")
                    elif key == "s":
                        print("staff button: short press")
                        button.press()
                    elif key == "l":
                        print("staff button: long press (staff mode)")
                        button.press(hold_s=config.gpio.long_press_s + 0.3)
            except KeyboardInterrupt:
                pass
            finally:
                stop.set()
                if slot is not None:
                    slot.remove()
    if args.out is None:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    os.environ.pop("SDL_VIDEODRIVER", None)
    return 0
