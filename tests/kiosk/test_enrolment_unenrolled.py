"""``kiosk unenrolled``: the maintainer's screen (drawn off-screen, saved as PNG, checked like
every patient screen), its light pattern on gpiozero's mock pins, and the process as systemd
runs it: READY once the screen is up, STOPPING and exit 0 on SIGTERM, no kiosk.toml read."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pygame
import pytest
from gpiozero.pins.mock import MockFactory, MockPin

from kiosk.enrolment.unenrolled import (
    MAINTAINER_PATTERNS,
    MAX_DETAIL_COLUMNS,
    MaintainerLights,
    Reason,
    draw_unenrolled,
    shortened,
)
from kiosk.hw.config import GpioConfig
from kiosk.hw.patterns import SIGNAL_PATTERNS, Lamp
from kiosk.ui import theme
from kiosk.ui.fonts import Fonts
from kiosk.ui.layouts import LAYOUTS, Layout
from kiosk.ui.theme import Tone
from tests.kiosk.test_supervision_notify import FakeSystemd
from tests.support.display import check_layout, check_text_fits, colours_on_grid
from tests.support.pins import wait_for_changes

DETAIL = "device.pem expired on 2026-11-30: issue a new bundle"


@pytest.fixture(scope="module")
def fonts() -> Iterator[Fonts]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SDL_VIDEODRIVER", "dummy")
        patch.setenv("SDL_AUDIODRIVER", "dummy")
        yield Fonts()


@pytest.mark.parametrize("reason", list(Reason))
@pytest.mark.parametrize("layout", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_the_screen_says_what_is_wrong_and_what_to_do_in_both_languages(
    reason: Reason, layout: Layout, fonts: Fonts, tmp_path_factory: pytest.TempPathFactory
) -> None:
    frame = draw_unenrolled(reason, DETAIL, layout, fonts)
    shot = tmp_path_factory.mktemp("unenrolled") / f"{layout.name}-{reason.value}.png"
    pygame.image.save(frame.surface, str(shot))
    assert shot.stat().st_size > 5_000

    assert frame.surface.get_size() == layout.size
    tone = Tone.ERROR if reason is Reason.BROKEN else Tone.STAFF_MODE
    assert theme.PALETTES[tone].band in colours_on_grid(frame.surface)
    check_text_fits(frame, fonts)
    check_layout(frame)
    shown = " ".join(t.text for t in frame.texts)
    assert ("未登録" in shown) == (reason is Reason.MISSING)
    assert ("not enrolled" in shown) == (reason is Reason.MISSING)
    assert ("壊れています" in shown) == (reason is Reason.BROKEN)
    assert (DETAIL in shown) == (reason is Reason.BROKEN)  # the reason only when broken
    for needed in ("provisioning/enrol", "--bundle", "hardware.md", "受付", "desk"):
        assert needed in shown
    assert frame.targets == []  # nothing to press: nothing here is for patients to do


@pytest.mark.parametrize("layout", list(LAYOUTS.values()), ids=list(LAYOUTS))
@pytest.mark.parametrize("detail", ["x " * 400, "ファイルが壊れています" * 40])
def test_a_long_reason_is_shortened_to_fit(layout: Layout, detail: str, fonts: Fonts) -> None:
    frame = draw_unenrolled(Reason.BROKEN, detail, layout, fonts)
    reason = next(t.text for t in frame.texts if t.text.startswith("理由"))
    assert reason.endswith("…")
    check_text_fits(frame, fonts)


def test_shortening_counts_full_width_characters_twice() -> None:
    assert shortened("a  b\n c") == "a b c"
    assert shortened("a" * MAX_DETAIL_COLUMNS) == "a" * MAX_DETAIL_COLUMNS
    assert shortened("a" * (MAX_DETAIL_COLUMNS + 1)) == "a" * (MAX_DETAIL_COLUMNS - 1) + "…"
    assert shortened("鍵" * MAX_DETAIL_COLUMNS) == "鍵" * (MAX_DETAIL_COLUMNS // 2 - 1) + "…"


def test_the_patterns_light_two_lamps_in_turn_unlike_any_patient_signal() -> None:
    assert all(p.lamp is None or isinstance(p.lamp, Lamp) for p in SIGNAL_PATTERNS.values())
    missing, broken = MAINTAINER_PATTERNS[Reason.MISSING], MAINTAINER_PATTERNS[Reason.BROKEN]
    assert missing.first != missing.second
    assert broken.first != broken.second
    assert {missing.first, missing.second} != {broken.first, broken.second}
    assert broken.half_s < missing.half_s  # broken blinks faster


@pytest.mark.parametrize("reason", list(Reason))
def test_the_lights_take_turns_on_the_pins(reason: Reason) -> None:
    factory = MockFactory(pin_class=MockPin)
    gpio = GpioConfig(backend="mock")
    pattern = MAINTAINER_PATTERNS[reason]
    lights = MaintainerLights(gpio, pattern, factory)
    first, second = (
        factory.pin(getattr(gpio, lamp.value)) for lamp in (pattern.first, pattern.second)
    )
    others = [
        factory.pin(getattr(gpio, lamp.value))
        for lamp in Lamp
        if lamp not in (pattern.first, pattern.second)
    ]
    try:
        lights.start()
        wait_for_changes(first, 3, timeout_s=10)
        wait_for_changes(second, 2, timeout_s=10)
        assert [s.state for s in first.states[1:4]] == [True, False, True]
        assert [s.state for s in second.states[1:3]] == [True, False]
        assert all(len(pin.states) == 1 and not pin.state for pin in others)
        # never both at once: the second lights only after the first went dark
        assert second.states[1].timestamp >= first.states[2].timestamp - 0.05
    finally:
        lights.close()
    assert not first.state
    assert not second.state


def run_under_notify(tmp_path: Path, *options: str, video: str = "dummy") -> str:
    """Run ``kiosk unenrolled --reason broken`` as systemd would: wait for READY, send
    SIGTERM, wait for STOPPING and exit 0; its stderr."""
    with tempfile.TemporaryDirectory(prefix="notify-", dir="/tmp") as folder:
        address = str(Path(folder) / "notify")
        systemd = FakeSystemd(address)
        env = {
            **os.environ,
            "NOTIFY_SOCKET": address,
            "SDL_VIDEODRIVER": video,
            "SDL_AUDIODRIVER": "dummy",
        }
        command = [sys.executable, "-m", "kiosk", "unenrolled", "--reason", "broken"]
        # the reason split into words, as systemd splits an unquoted ${DETAIL}
        command += ["--detail", *DETAIL.split(" "), "--windowed", *options]
        process = subprocess.Popen(
            command, env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True
        )
        try:
            lines, pid = systemd.receive(timeout_s=30)
            assert "READY=1" in lines
            assert "STATUS=not enrolled: broken" in lines
            assert pid == process.pid
            time.sleep(0.2)
            assert process.poll() is None  # it stays up, showing the screen
            process.send_signal(signal.SIGTERM)
            lines, _ = systemd.receive(timeout_s=10)
            assert "STOPPING=1" in lines
            _, err = process.communicate(timeout=10)
            assert process.returncode == 0, err
            return err
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            systemd.close()


def test_the_command_tells_systemd_it_is_ready_and_stops_on_sigterm(tmp_path: Path) -> None:
    err = run_under_notify(tmp_path, "--gpio-backend", "mock")
    assert DETAIL in err  # the whole reason is in the journal
    assert "cannot show" not in err


def test_without_a_screen_or_pins_it_still_stays_up_and_says_why(tmp_path: Path) -> None:
    # lgpio on a chip no machine has: without the module, or without the chip, it cannot open
    options = ("--gpio-backend", "lgpio", "--gpio-chip", "99")
    err = run_under_notify(tmp_path, *options, video="no-such-video-driver")
    assert "the screen cannot show the enrolment message" in err
    assert "the status lights cannot show the enrolment pattern" in err
