"""The kiosk under test, and what the tests do with it: cards, staff, lamps, records."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.app import Kiosk, Parts, build_kiosk
from kiosk.config import load_config
from kiosk.flow.screens import PatientDisplay, Screen, ScreenId
from kiosk.hw.patterns import Lamp
from kiosk.sim.card import VirtualJpkiCard
from kiosk.sim.profile import CardProfile
from kiosk.sim.vpcd import Faults, InsertedCard, insert
from testbed.environment import DEMO_PORT, DEMO_READER, Environment, write_kiosk_config
from testbed.patient import Patient
from testbed.screen_log import ScreenLog
from testbed.staff import StaffHand

E2E_TIMEOUTS = {
    "reading_s": 8.0,
    "pin_entry_s": 30.0,
    "checking_s": 15.0,
    "after_removal_s": 0.4,
    "removed_early_s": 0.4,
    "reader_missing_s": 1.0,
}


class KioskUnderTest:
    """A kiosk built by ``build_kiosk`` from a TOML file; a recording display; mock GPIO."""

    def __init__(
        self,
        env: Environment,
        folder: Path,
        *,
        reader: str = DEMO_READER,
        timeouts: dict[str, float] | None = None,
        card_left: dict[str, Any] | None = None,
        real_display: bool = True,
    ) -> None:
        """``real_display``: the kiosk's own PygameDisplay (SDL dummy driver) behind the
        recording; pygame has one display per process, so a second kiosk records only."""
        folder.mkdir(parents=True, exist_ok=True)
        self.env = env
        path = write_kiosk_config(
            folder / "kiosk.toml",
            device=env.device,
            server_url=env.clinic.url,
            outbox=folder / "outbox.db",
            reader=reader,
            timeouts={**E2E_TIMEOUTS, **(timeouts or {})},
            card_left=card_left or {"remind_after_s": [0.5, 1.0, 1.5], "repeat_s": 1.0},
        )
        self.config = load_config(path)
        self.log = ScreenLog()
        self.display: Any = None

        def recorded(display: PatientDisplay) -> PatientDisplay:
            self.display = self.log.inner = display
            return self.log

        parts = Parts(wrap_display=recorded) if real_display else Parts(display=self.log)
        self.kiosk: Kiosk = build_kiosk(self.config, parts)
        self.button = StaffHand(
            self.kiosk.hardware.pin_factory,
            self.config.gpio.staff_button,
            bounce_s=self.config.gpio.button_bounce_s,
        )
        self.patient = Patient(self.log, staff=self.button.press, timeout_s=20.0)

    def start(self) -> KioskUnderTest:
        self.kiosk.start()
        self.log.wait_for(lambda s: s.id in (ScreenId.IDLE, ScreenId.READER_MISSING))
        return self

    def stop(self) -> None:
        self.kiosk.stop()

    # -- the card --

    def place(
        self,
        profile: CardProfile,
        *,
        faults: Faults | None = None,
        timing: Any = None,
    ) -> InsertedCard:
        self.idle()
        return insert(VirtualJpkiCard(profile), port=DEMO_PORT, faults=faults, timing=timing)

    def idle(self, timeout_s: float = 15.0) -> Screen:
        """Wait until the kiosk is ready for the next patient."""
        return self.log.wait_for(
            lambda s: s.id is ScreenId.IDLE, timeout_s, after=max(0, self.log.mark() - 1)
        )

    def wait(self, screen_id: ScreenId, after: int, timeout_s: float = 15.0) -> Screen:
        return self.log.wait_for(lambda s: s.id is screen_id, timeout_s, after=after)

    def ids_since(self, mark: int) -> list[ScreenId]:
        return [item.screen.id for item in self.log.since(mark)]

    # -- lamps, buzzer --

    def lamp_pin(self, lamp: Lamp) -> Any:
        number = self.kiosk.hardware.lights.pin_of(lamp)
        return self.kiosk.hardware.pin_factory.pin(number)

    def buzzer_pin(self) -> Any:
        return self.kiosk.hardware.pin_factory.pin(self.config.gpio.buzzer)

    def lit(self) -> dict[Lamp, bool]:
        return self.kiosk.hardware.lights.lit()

    # -- the outbox, opened with the clinic server's key --

    def records(self, since_seq: int = 0) -> list[tuple[str, dict[str, Any]]]:
        from clinic.outbox_key import outbox_key_paths
        from contract.sealing import OutboxPrivateKey

        self.kiosk.runner.journal.flush()
        private, _ = outbox_key_paths(self.env.clinic.data_dir)
        opener = OutboxPrivateKey.load(private).opener()
        rows = self.kiosk.outbox.pending(max_records=100_000, max_bytes=1 << 30)
        return [
            (r.header.kind, json.loads(opener.open(r.sealed, r.header)))
            for r in rows
            if r.seq > since_seq
        ]

    def last_seq(self) -> int:
        self.kiosk.runner.journal.flush()
        rows = self.kiosk.outbox.pending(max_records=100_000, max_bytes=1 << 30)
        return rows[-1].seq if rows else 0


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)


def copy_profile(profile: CardProfile, folder: Path) -> CardProfile:
    """The card in a file of the test's own, so its PIN counter changes only there."""
    profile.save(folder / f"{profile.id}.toml")
    return profile
