"""Fixtures of the touch-screen tests: SDL without a screen or a sound card, fonts, displays.

SDL's ``dummy`` video driver renders off-screen and its ``dummy`` audio driver plays into
nothing; no test opens a real window or needs a sound card.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from kiosk.ui import voice
from kiosk.ui.config import DisplayConfig, VoiceConfig
from kiosk.ui.display import PygameDisplay
from kiosk.ui.fonts import Fonts
from tests.support.display import Inputs


@pytest.fixture(scope="session", autouse=True)
def _sdl_without_hardware() -> Iterator[None]:
    """Importing pygame initialises nothing; SDL reads these when a test opens a display."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SDL_VIDEODRIVER", "dummy")
        patch.setenv("SDL_AUDIODRIVER", "dummy")
        yield


@pytest.fixture(scope="session")
def fonts() -> Fonts:
    """The real Noto Sans CJK faces, opened once for every test that draws."""
    return Fonts()


@pytest.fixture(scope="session")
def voice_dir(request: pytest.FixtureRequest) -> Path:
    """Every prompt in every language, built once into pytest's cache and kept up to date.

    The first run renders all of them (a few seconds per language); later runs only what
    changed, which is the manifest's job.
    """
    out = Path(request.config.cache.mkdir("kiosk-voice"))
    voice.build(out, voice.plan(), prune=True)
    return out


@pytest.fixture
def start_display() -> Iterator[Callable[..., tuple[PygameDisplay, Inputs]]]:
    """Start a real PygameDisplay (its own UI thread) on the dummy driver; stopped after."""
    started: list[PygameDisplay] = []

    def start(
        config: DisplayConfig | None = None, **changes: object
    ) -> tuple[PygameDisplay, Inputs]:
        cfg = config or DisplayConfig(fullscreen=False, voice=VoiceConfig(enabled=False))
        if changes:
            cfg = replace(cfg, **changes)  # type: ignore[arg-type]
        display = PygameDisplay(cfg)
        inputs = Inputs()
        display.start(inputs)
        started.append(display)
        return display, inputs

    yield start
    for display in started:
        display.stop()
