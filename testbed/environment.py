"""The demo's world on one machine: a population of virtual cards, a local clinic server
serving it, and a kiosk configuration written as a maintainer would write one.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.sim.population import Population
from testbed.local_clinic import PASSWORD, LocalClinic
from testbed.staff import ReceptionistBrowser

#: The vpcd reader the demo and the end-to-end tests use (port 35963).
DEMO_READER = "Virtual PCD 00 00"
DEMO_PORT = 35963
DEMO_DEVICE = "kiosk-demo"


@dataclass
class Environment:
    """A population, a clinic server serving it, and a kiosk config pointing at both."""

    root: Path
    population: Population
    clinic: LocalClinic
    config_path: Path

    @property
    def device(self) -> Any:
        return self.clinic.kiosks[DEMO_DEVICE]

    def dashboard(self) -> ReceptionistBrowser:
        return ReceptionistBrowser(self.clinic.staff_url, self.device.server_ca, "admin", PASSWORD)


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
    voice_dir: Path | None = None,
    extra: str = "",
) -> Path:
    """A kiosk TOML file as a maintainer would write one, for the local server."""
    outbox.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the data partition's folder
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
    voice = ["enabled = false"] if voice_dir is None else [f'dir = "{voice_dir}"']
    lines += ["", "[voice]", *voice, "", "[timeouts]"]
    lines += [f"{k} = {v}" for k, v in {**DEMO_TIMEOUTS, **(timeouts or {})}.items()]
    if card_left:
        lines += ["", "[card_left]"]
        lines += [f"{k} = {json.dumps(v)}" for k, v in card_left.items()]
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


@contextlib.contextmanager
def environment(
    root: Path, *, count: int | None = None, seed: int = 7, receipt_folder: Path | None = None
) -> Iterator[Environment]:
    """Generate the population (by default one card of each outcome), start the clinic
    server, write the kiosk's config (and with ``receipt_folder``, the server writes result
    files for receipt software there)."""
    from kiosk.sim.outcomes import OUTCOMES
    from kiosk.sim.population import generate_population

    population = generate_population(root / "population", count or len(OUTCOMES), seed=seed)
    clinic = LocalClinic(
        root / "server", [DEMO_DEVICE], population=population, receipt_folder=receipt_folder
    )
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
