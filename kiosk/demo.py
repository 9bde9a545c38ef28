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
import contextlib
import json
import os
import re
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from kiosk.flow.screens import PatientDisplay, Screen, ScreenId, UiAction, UiInput
from kiosk.sim.population import Population, PopulationCard

#: The vpcd reader the demo and the end-to-end tests use (port 35963).
DEMO_READER = "Virtual PCD 00 00"
DEMO_PORT = 35963
DEMO_DEVICE = "kiosk-demo"

#: Screens a visit ends on (the patient takes the card there).
FINAL_SCREENS = frozenset(
    {ScreenId.RESULT_OK, ScreenId.NEEDS_STAFF, ScreenId.ERROR, ScreenId.SERVER_UNREACHABLE}
)


# --- the screen, recorded ----------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    screen: Screen
    at: float


class ScreenLog:
    """A :class:`PatientDisplay` around another one: keeps every screen shown (and, with
    ``on_show``, e.g. photographs it), lets a script touch the screen, and waits for screens.
    """

    def __init__(
        self,
        inner: PatientDisplay | None = None,
        *,
        on_show: Callable[[Screen], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.on_show = on_show
        self._clock = clock
        self._on_input: Callable[[UiInput], None] | None = None
        self._cond = threading.Condition()
        self.shown: list[Shown] = []

    def start(self, on_input: Callable[[UiInput], None]) -> None:
        self._on_input = on_input
        if self.inner is not None:
            self.inner.start(on_input)

    def show(self, screen: Screen) -> None:
        with self._cond:
            if self.shown and self.shown[-1].screen == screen:
                return
            self.shown.append(Shown(screen, self._clock()))
            self._cond.notify_all()
        if self.inner is not None:
            self.inner.show(screen)
        if self.on_show is not None:
            self.on_show(screen)

    def stop(self) -> None:
        if self.inner is not None:
            self.inner.stop()

    def touch(self, ui: UiInput) -> None:
        """What a finger on the screen does: the input goes to the kiosk."""
        if self._on_input is None:
            raise RuntimeError("the display has not been started")
        self._on_input(ui)

    @property
    def current(self) -> Screen | None:
        with self._cond:
            return self.shown[-1].screen if self.shown else None

    def mark(self) -> int:
        with self._cond:
            return len(self.shown)

    def since(self, mark: int) -> list[Shown]:
        with self._cond:
            return list(self.shown[mark:])

    def wait_for(
        self, predicate: Callable[[Screen], bool], timeout_s: float = 10.0, *, after: int = 0
    ) -> Screen:
        """The first screen from ``after`` on that satisfies ``predicate`` (waiting for it)."""
        deadline = self._clock() + timeout_s
        with self._cond:
            while True:
                for item in self.shown[after:]:
                    if predicate(item.screen):
                        return item.screen
                left = deadline - self._clock()
                if left <= 0:
                    recent = [s.screen.id.value for s in self.shown[-8:]]
                    raise TimeoutError(f"the screen did not come; recent screens: {recent}")
                self._cond.wait(left)

    def wait_change(self, after: int, timeout_s: float = 10.0) -> Screen:
        """The next screen shown after position ``after``."""
        return self.wait_for(lambda _: True, timeout_s, after=after)


# --- the staff's hands -------------------------------------------------------------------------


class StaffButton:
    """The kiosk's physical staff button, pressed on gpiozero's mock pins."""

    def __init__(self, pin_factory: Any, pin: int, *, bounce_s: float = 0.05) -> None:
        self._pin = pin_factory.pin(pin)
        self._bounce_s = bounce_s

    def press(self, hold_s: float | None = None) -> None:
        """A short press (released after a moment), or held ``hold_s`` seconds."""
        self._pin.drive_low()
        time.sleep(hold_s if hold_s is not None else self._bounce_s * 3 + 0.05)
        self._pin.drive_high()
        time.sleep(self._bounce_s * 2)


class Dashboard:
    """The staff dashboard over HTTPS, as a receptionist's browser uses it."""

    def __init__(self, url: str, server_ca: Path, username: str, password: str) -> None:
        self._client = httpx.Client(
            base_url=url,
            verify=ssl.create_default_context(cafile=str(server_ca)),
            follow_redirects=False,
            timeout=10.0,
        )
        self._username = username
        self._password = password
        self._logged_in = False

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Dashboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def login(self) -> None:
        page = self._client.get("/login")
        answer = self._client.post(
            "/login",
            data={
                "csrf": _hidden(page.text, "csrf"),
                "username": self._username,
                "password": self._password,
                "next": "/queue",
            },
        )
        if answer.status_code != 303 or "failed" in answer.headers.get("location", ""):
            raise RuntimeError(f"dashboard login refused ({answer.status_code})")
        self._logged_in = True

    def awaiting(self, device_id: str) -> list[str]:
        """Visual checks of ``device_id`` waiting for staff, from the queue page."""
        if not self._logged_in:
            self.login()
        page = self._client.get("/queue")
        page.raise_for_status()
        found = []
        for ticket in re.findall(
            r'<article class="ticket[^"]*" id="q-([0-9a-f]{32})">(.*?)'
            r"</article>",
            page.text,
            re.S,
        ):
            vid, body = ticket
            if device_id in body and f"/verifications/{vid}/decide" in body:
                found.append(vid)
        return found

    def decide(self, verification_id: str, decision: str = "confirmed") -> None:
        """Press the confirm (or reject) button of the queue page."""
        page = self._client.get("/queue")
        answer = self._client.post(
            f"/verifications/{verification_id}/decide",
            data={"csrf": _hidden(page.text, "csrf"), "decision": decision, "next": "/queue"},
        )
        if answer.status_code != 303:
            raise RuntimeError(f"the decision was refused ({answer.status_code})")


def _hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    if match is None:
        raise RuntimeError(f"no hidden field {name!r} on the page")
    return match.group(1)


# --- the environment ----------------------------------------------------------------------------


@dataclass
class Environment:
    """A population, a clinic server serving it, and a kiosk config pointing at both."""

    root: Path
    population: Population
    clinic: Any  # kiosk.bench.outbox.LocalClinic
    config_path: Path

    @property
    def device(self) -> Any:
        return self.clinic.kiosks[DEMO_DEVICE]

    def dashboard(self) -> Dashboard:
        from kiosk.bench.outbox import PASSWORD

        return Dashboard(self.clinic.staff_url, self.device.server_ca, "admin", PASSWORD)


DEMO_TIMEOUTS = {
    "reading_s": 10.0,
    "pin_entry_s": 60.0,
    "checking_s": 20.0,
    "after_removal_s": 2.0,
    "removed_early_s": 3.0,
}


def write_kiosk_config(
    path: Path,
    *,
    device: Any,
    server_url: str,
    outbox: Path,
    reader: str = DEMO_READER,
    timeouts: dict[str, float] | None = None,
    card_left: dict[str, Any] | None = None,
    layout: str = "landscape",
    fullscreen: bool = False,
    video_driver: str | None = "dummy",
    extra: str = "",
) -> Path:
    """A kiosk TOML file as a maintainer would write one, for the local server."""
    lines = [
        "[device]",
        f'certificate = "{device.certificate}"',
        f'key = "{device.key}"',
        "",
        "[server]",
        f'url = "{server_url}"',
        f'ca = "{device.server_ca}"',
        "long_poll_s = 2.0",
        "",
        "[outbox]",
        f'path = "{outbox}"',
        f'public_key = "{device.outbox_public_key}"',
        "",
        "[reader]",
        f'name = "{reader}"',
        "",
        "[gpio]",
        'backend = "mock"',
        "",
        "[display]",
        f'layout = "{layout}"',
        f"fullscreen = {'true' if fullscreen else 'false'}",
    ]
    if video_driver is not None:
        lines.append(f'video_driver = "{video_driver}"')
    lines += ["", "[voice]", "enabled = false", "", "[timeouts]"]
    lines += [f"{k} = {v}" for k, v in {**DEMO_TIMEOUTS, **(timeouts or {})}.items()]
    if card_left:
        lines += ["", "[card_left]"]
        lines += [f"{k} = {json.dumps(v)}" for k, v in card_left.items()]
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


@contextlib.contextmanager
def environment(root: Path, *, count: int = 20, seed: int = 7) -> Iterator[Environment]:
    """Generate the population, start the clinic server, write the kiosk's config."""
    from kiosk.bench.outbox import LocalClinic
    from kiosk.sim.population import generate_population

    population = generate_population(root / "population", count, seed=seed)
    clinic = LocalClinic(root / "server", [DEMO_DEVICE], population=population)
    clinic.start()
    try:
        config = write_kiosk_config(
            root / "kiosk.toml",
            device=clinic.kiosks[DEMO_DEVICE],
            server_url=clinic.url,
            outbox=root / "kiosk" / "outbox.db",
        )
        yield Environment(root, population, clinic, config)
    finally:
        clinic.stop()


# --- a patient ----------------------------------------------------------------------------------


@dataclass
class Visit:
    """One patient at the kiosk, as the transcript records it."""

    profile: str
    outcome: str
    expected: str
    shown: str
    seconds: float
    screens: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "outcome": self.outcome,
            "expected": self.expected,
            "shown": self.shown,
            "seconds": round(self.seconds, 3),
            "screens": self.screens,
        }


def route_shown(screens: list[Screen]) -> str:
    """``ok``, ``staff`` or ``error``: how the visit ended, read off the screens alone."""
    ids = [s.id for s in screens]
    final = next((s for s in reversed(screens) if s.id in FINAL_SCREENS), None)
    if final is None:
        return "none"
    if final.id is ScreenId.ERROR:
        return "error"
    if final.id is ScreenId.RESULT_OK and ScreenId.VISUAL_WAIT not in ids:
        return "ok"
    return "staff"


def describe_screen(screen: Screen) -> dict[str, Any]:
    """A screen for the transcript: what it shows, never more."""
    item: dict[str, Any] = {"id": screen.id.value}
    if screen.notice is not None:
        item["notice"] = screen.notice.code
    if screen.tries_left is not None:
        item["tries_left"] = screen.tries_left
    if screen.pin_unavailable is not None:
        item["pin_unavailable"] = screen.pin_unavailable.value
    if screen.digits_typed:
        item["digits"] = screen.digits_typed
    if screen.wrong_pin:
        item["wrong_pin"] = True
    if screen.renew_certificate:
        item["renew_certificate"] = True
    if screen.reminder_level:
        item["reminder_level"] = screen.reminder_level
    return item


class Patient:
    """Places a card, does what the screen offers, takes the card; never looks behind it.

    ``pin`` is what the patient remembers (None: nothing to type); ``pause_s`` the time
    between two keys. The staff check is chosen when it is the only way, and then ``staff``
    confirms it (the kiosk's button, or the dashboard).
    """

    def __init__(
        self,
        log: ScreenLog,
        *,
        staff: Callable[[], None],
        pause_s: float = 0.0,
        timeout_s: float = 20.0,
    ) -> None:
        self.log = log
        self.staff = staff
        self.pause_s = pause_s
        self.timeout_s = timeout_s

    def type_pin(self, pin: str) -> None:
        for digit in pin:
            if self.pause_s:
                time.sleep(self.pause_s)
            self.log.touch(UiInput(UiAction.DIGIT, digit))

    def until_final(self, pin: str | None, mark: int) -> Screen:
        """React to each new screen until a final one; returns it."""
        seen = mark
        while True:
            screen = self.log.wait_change(seen, self.timeout_s)
            seen += 1
            if screen.id in FINAL_SCREENS:
                return screen
            if screen.id is ScreenId.PIN_ENTRY and screen.digits_typed == 0:
                if pin is None:
                    self.log.touch(UiInput(UiAction.CANCEL))
                else:
                    self.type_pin(pin)
            elif screen.id is ScreenId.CHOOSE_CHECK:
                if screen.pin_unavailable is not None or pin is None:
                    self.log.touch(UiInput(UiAction.CHOOSE_VISUAL))
                else:
                    self.log.touch(UiInput(UiAction.CHOOSE_PIN))
            elif screen.id is ScreenId.VISUAL_WAIT:
                self.staff()


def visit(
    patient: Patient,
    card: PopulationCard,
    *,
    pin: str | None,
    port: int = DEMO_PORT,
    timing: Any = None,
) -> Visit:
    """One patient of ``card``'s outcome: place, follow the screens, take the card, wait for
    the kiosk to be ready again."""
    from kiosk.sim.card import VirtualJpkiCard
    from kiosk.sim.vpcd import insert

    profile = card.load_profile()
    log = patient.log
    log.wait_for(lambda s: s.id is ScreenId.IDLE, patient.timeout_s, after=max(0, log.mark() - 1))
    mark = log.mark()
    start = time.monotonic()
    slot = insert(VirtualJpkiCard(profile), port=port, timing=timing)
    try:
        patient.until_final(pin, mark)
        seconds = time.monotonic() - start
    finally:
        slot.remove()
    log.wait_for(lambda s: s.id is ScreenId.IDLE, patient.timeout_s, after=log.mark() - 1)
    screens = [item.screen for item in log.since(mark)]
    return Visit(
        profile=card.id,
        outcome=card.outcome,
        expected=card.expected_route,
        shown=route_shown(screens),
        seconds=seconds,
        screens=[describe_screen(s) for s in screens],
    )


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
    button = StaffButton(
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
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    headless = args.headless or not has_display()
    if not headless:
        from kiosk.demo_window import run_window

        return run_window(args)
    os.environ["SDL_VIDEODRIVER"] = "dummy"
    outcomes = None if args.scenario == "all" else [o.strip() for o in args.scenario.split(",")]
    out = args.out or Path(tempfile.mkdtemp(prefix="onshi-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="onshi-demo-work-"))
    if not args.headless:
        print("no display here: running the headless scenario instead")
    print(f"clinic server, population and kiosk in {work}")
    try:
        with environment(work) as env:
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
    print(
        f"{len(visits)} patients, {len(visits) - len(mismatches)} as expected"
        + (f", {len(mismatches)} NOT: {[v.outcome for v in mismatches]}" if mismatches else "")
    )
    return 1 if mismatches else 0
