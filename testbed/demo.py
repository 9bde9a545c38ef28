"""``kiosk demo``: the whole product on one machine, on the real stack.

A population of virtual cards is generated; a clinic server (``LocalClinic``: TLS, mutual TLS,
device-signed requests, the simulated national system holding the population) starts on
127.0.0.1; the kiosk is built by the one composition root (:func:`kiosk.app.build_kiosk`)
from a TOML file like a real one, with simulated GPIO pins; cards go onto the vpcd reader of
the running pcscd.

* ``kiosk demo --headless --scenario all --out DIR``: one patient of every outcome of the
  population walks up, places the card, reads the screen and does what it offers - types
  the PIN (through the display's input callback, as a touch would), chooses the staff check
  when that is the only way, and a member of staff presses the kiosk's button (a GPIO pin
  driven on gpiozero's MockFactory). ``DIR/transcript.jsonl`` gets one line per patient
  (``profile``, ``expected``, ``shown``, ``seconds``, the screens) and ``DIR/screens/`` a PNG
  of each screen passed through. Exit code 1 when any ``shown`` differs from ``expected``.
* ``kiosk demo`` with a display: the kiosk in a window; keys in the terminal place and
  remove cards of each profile and press the staff button. Without a display the headless
  scenario runs instead and says where the screenshots are.

The same pieces drive the end-to-end tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.flow.screens import PatientDisplay, Screen
from kiosk.sim.population import Population, PopulationCard
from testbed.environment import (
    Environment,
    environment,
    write_kiosk_config,
)
from testbed.patient import Patient, Visit, visit
from testbed.screen_log import ScreenLog
from testbed.staff import StaffHand

# --- the headless scenario ----------------------------------------------------------------------


class Photographer:
    """Saves a PNG of each screen shown, as the real display drew it (SDL dummy driver).

    Called on the flow's thread right after the screen was handed to the display: it waits
    until the display has drawn that very screen, so every screen passed through is
    photographed, even those a quick finger would replace within a frame.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.display: Any = None  # the PygameDisplay, once built
        self.count = 0
        self.current: list[str] = []
        folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, screen: Screen) -> None:
        if self.display is None:
            return
        self.count += 1
        name = f"{self.count:04d}-{screen.id.value}.png"
        if not self.display.wait_shown(screen, 5.0):
            raise RuntimeError(f"the display did not draw {screen.id.value}")
        self.display.screenshot(self.folder / name)
        self.current.append(name)


def _pins(population: Population) -> dict[str, str | None]:
    return {card.id: card.load_profile().pin for card in population.cards}


def run_scenario(
    env: Environment,
    out: Path,
    outcomes: list[str] | None = None,
    *,
    pause_s: float = 0.0,
    say: Callable[[str], None] = print,
) -> list[Visit]:
    """Walk one patient per outcome through the kiosk; write the transcript and PNGs."""
    from kiosk.app import Parts, build_kiosk
    from kiosk.config import load_config

    out.mkdir(parents=True, exist_ok=True)
    photographer = Photographer(out / "screens")
    log = ScreenLog(on_show=photographer)
    config = load_config(env.config_path)

    def recorded(display: PatientDisplay) -> PatientDisplay:
        photographer.display = display
        log.inner = display
        return log

    kiosk = build_kiosk(config, Parts(wrap_display=recorded))
    button = StaffHand(
        kiosk.hardware.pin_factory,
        config.gpio.staff_button,
        bounce_s=config.gpio.button_bounce_s,
    )
    chosen = _chosen_cards(env.population, outcomes)
    pins = _pins(env.population)
    visits: list[Visit] = []
    transcript = out / "transcript.jsonl"
    with kiosk, transcript.open("w", encoding="utf-8") as lines:
        patient = Patient(log, staff=button.press, pause_s=pause_s)
        for card in chosen:
            photographer.current = []
            result = visit(patient, card, pin=pins[card.id])
            record = result.to_json()
            record["png"] = photographer.current
            lines.write(json.dumps(record, ensure_ascii=False) + "\n")
            lines.flush()
            visits.append(result)
            mark = "ok " if result.shown == result.expected else "MISMATCH"
            say(
                f"{mark} {card.outcome:32} expected {result.expected:5} shown {result.shown:5} "
                f"{result.seconds:5.2f} s  "
                + " > ".join(s["id"] for s in result.screens if s["id"] != "idle")
            )
    return visits


def _chosen_cards(population: Population, outcomes: list[str] | None) -> list[PopulationCard]:
    if not outcomes:
        seen: set[str] = set()
        chosen = []
        for card in population.cards:
            if card.outcome not in seen:
                seen.add(card.outcome)
                chosen.append(card)
        return chosen
    return [population.card(name) for name in outcomes]


def keep_national_records(env: Environment, out: Path) -> None:
    """``OUT/population/insured.jsonl``: the national records the demo's server serves (what
    the result files in ``OUT/oqs/`` are checked against)."""
    kept = out / "population"
    kept.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(env.population.insured_path, kept / "insured.jsonl")


# --- the command --------------------------------------------------------------------------------


def has_display(environ: dict[str, str] | None = None) -> bool:
    """Whether a window can be opened here: X11, Wayland, or a usable KMS/DRM device."""
    env = os.environ if environ is None else environ
    if env.get("SDL_VIDEODRIVER") == "dummy":
        return False
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return True
    return any(os.access(card, os.R_OK | os.W_OK) for card in Path("/dev/dri").glob("card*"))


def run(args: argparse.Namespace) -> int:
    """``kiosk demo`` (see the module docstring)."""
    headless = args.headless or not has_display()
    if not headless:
        from testbed.demo_window import run_window

        return run_window(args)  # speaks, when the machine has a sound output
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ["SDL_VIDEODRIVER"] = "dummy"
    outcomes = args.outcomes  # checked by testbed.cli
    out = args.out or Path(tempfile.mkdtemp(prefix="onshi-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="onshi-demo-work-"))
    if not args.headless:
        print("no display here: running the headless scenario instead")
    print(f"clinic server, population and kiosk in {work}")
    try:
        with environment(work, receipt_folder=out / "oqs") as env:
            keep_national_records(env, out)
            pause = 0.35 if args.pace == "patient" else 0.0
            write_kiosk_config(
                env.config_path,
                device=env.device,
                server_url=env.clinic.url,
                outbox=work / "kiosk" / "outbox.db",
                layout=args.layout,
            )
            visits = run_scenario(env, out, outcomes, pause_s=pause)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    mismatches = [v for v in visits if v.shown != v.expected]
    print(f"\ntranscript: {out / 'transcript.jsonl'}")
    print(f"screenshots: {out / 'screens'}")
    print(f"result files for receipt software: {out / 'oqs'}")
    print(
        f"{len(visits)} patients, {len(visits) - len(mismatches)} as expected"
        + (f", {len(mismatches)} NOT: {[v.outcome for v in mismatches]}" if mismatches else "")
    )
    return 1 if mismatches else 0
