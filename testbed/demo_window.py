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
from collections.abc import Iterator
from pathlib import Path

KEYS = "1234567890abcdefghij"


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
    from kiosk.app import build_kiosk
    from kiosk.config import load_config
    from kiosk.sim.card import VirtualJpkiCard
    from kiosk.sim.vpcd import InsertedCard, insert
    from testbed.environment import DEMO_PORT, environment, write_kiosk_config
    from testbed.local_clinic import PASSWORD
    from testbed.staff import StaffHand

    work = Path(tempfile.mkdtemp(prefix="onshi-demo-window-"))
    with environment(args.out or work) as env:
        write_kiosk_config(
            env.config_path,
            device=env.device,
            server_url=env.clinic.url,
            outbox=(args.out or work) / "kiosk" / "outbox.db",
            layout=args.layout,
            video_driver=None,
            timeouts={"pin_entry_s": 60.0, "after_removal_s": 4.0},
        )
        config = load_config(env.config_path)
        kiosk = build_kiosk(config)
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
                        button.press()
                    elif key == "l":
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
