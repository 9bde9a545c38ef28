"""The real PygameDisplay, its own UI thread, SDL's dummy drivers: events in, pictures out."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pygame
import pytest

from contract.errors import ConfigError
from kiosk.flow.screens import Language, PinUnavailable, Screen, ScreenId, UiAction, UiInput
from kiosk.ui import input as ui_input
from kiosk.ui import voice
from kiosk.ui.config import DisplayConfig, VoiceConfig
from kiosk.ui.display import PygameDisplay
from kiosk.ui.fonts import Fonts
from kiosk.ui.layouts import LANDSCAPE
from kiosk.ui.render import draw, render
from tests.support.display import Inputs

StartDisplay = Callable[..., tuple[PygameDisplay, Inputs]]

PIN = Screen(ScreenId.PIN_ENTRY, tries_left=3)
WINDOWED = DisplayConfig(fullscreen=False, voice=VoiceConfig(enabled=False))


@pytest.fixture(autouse=True)
def _short_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests tap soon after a screen appears; the settle guard has its own test."""
    monkeypatch.setattr(ui_input, "SETTLE_S", 0.0)


def show_and_wait(display: PygameDisplay, screen: Screen) -> None:
    display.show(screen)
    assert display.wait_shown(screen), f"{screen.id} was not drawn"


def centre_of(screen: Screen, fonts: Fonts, wanted: UiInput) -> tuple[int, int]:
    frame = draw(screen, LANDSCAPE, fonts)
    return next(t.rect.center for t in frame.targets if t.input == wanted)


def post(kind: int, **attributes: object) -> None:
    assert pygame.event.post(pygame.event.Event(kind, **attributes))


def test_an_equal_screen_is_not_drawn_again(start_display: StartDisplay) -> None:
    display, _ = start_display(WINDOWED)
    show_and_wait(display, Screen(ScreenId.IDLE))
    display.show(Screen(ScreenId.IDLE))
    display.show(Screen(ScreenId.IDLE, Language.JA))  # another object, the same value
    time.sleep(0.3)
    assert display.render_count == 1
    show_and_wait(display, Screen(ScreenId.IDLE, Language.EN))
    assert display.render_count == 2
    assert display.frame_count == 0, "a still screen has no animation frames"
    assert display.last_shown == Screen(ScreenId.IDLE, Language.EN)


def test_show_returns_at_once_and_the_latest_screen_wins(start_display: StartDisplay) -> None:
    display, _ = start_display(WINDOWED)
    started = time.perf_counter()
    for digits in range(4):
        display.show(replace(PIN, digits_typed=digits))
    elapsed = time.perf_counter() - started
    assert elapsed < 0.05, f"show() took {elapsed * 1000:.1f} ms for 4 calls"
    assert display.wait_shown(replace(PIN, digits_typed=3))
    assert display.render_count <= 4


def test_touch_mouse_and_keypad_reach_on_input(
    start_display: StartDisplay, fonts: Fonts, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    display, inputs = start_display(WINDOWED)
    show_and_wait(display, PIN)
    w, h = LANDSCAPE.size

    x, y = centre_of(PIN, fonts, UiInput(UiAction.DIGIT, "4"))
    post(pygame.FINGERDOWN, x=x / w, y=y / h, touch_id=1, finger_id=0)
    post(pygame.FINGERUP, x=x / w, y=y / h, touch_id=1, finger_id=0)
    assert inputs.next() == UiInput(UiAction.DIGIT, "4")

    x, y = centre_of(PIN, fonts, UiInput(UiAction.DIGIT, "7"))
    post(pygame.MOUSEBUTTONDOWN, pos=(x, y), button=1, touch=False)
    post(pygame.MOUSEBUTTONUP, pos=(x, y), button=1, touch=False)
    assert inputs.next() == UiInput(UiAction.DIGIT, "7")

    post(pygame.KEYDOWN, key=pygame.K_KP1, scancode=89, mod=0, unicode="1")
    assert inputs.next() == UiInput(UiAction.DIGIT, "1")
    post(pygame.KEYDOWN, key=pygame.K_9, scancode=38, mod=0, unicode="9")
    assert inputs.next() == UiInput(UiAction.DIGIT, "9")
    post(pygame.KEYDOWN, key=pygame.K_KP_PERIOD, scancode=99, mod=0, unicode=".")
    assert inputs.next() == UiInput(UiAction.ERASE)
    post(pygame.KEYDOWN, key=pygame.K_ESCAPE, scancode=41, mod=0, unicode="")
    assert inputs.next() == UiInput(UiAction.CANCEL)
    assert inputs.none_within(0.2), "one event, one input"

    # the PIN typed (4, 7, 1, 9) is in no log line, and nothing logged it at all
    assert "4719" not in caplog.text
    assert not [r for r in caplog.records if r.name.startswith("kiosk.ui")]


def test_a_double_tap_through_the_thread_counts_once(
    start_display: StartDisplay, fonts: Fonts
) -> None:
    display, inputs = start_display(WINDOWED)
    show_and_wait(display, PIN)
    x, y = centre_of(PIN, fonts, UiInput(UiAction.DIGIT, "2"))
    for _ in range(2):
        post(pygame.FINGERDOWN, x=x / 800, y=y / 480, touch_id=1, finger_id=0)
        post(pygame.FINGERUP, x=x / 800, y=y / 480, touch_id=1, finger_id=0)
    assert inputs.next() == UiInput(UiAction.DIGIT, "2")
    assert inputs.none_within(0.3)


def test_fullscreen_fits_the_panel_into_the_screen_and_maps_touches_back(
    start_display: StartDisplay, fonts: Fonts
) -> None:
    # SDL's dummy "screen" is larger than the layout, as a mismatched panel would be
    display, inputs = start_display(replace(WINDOWED, fullscreen=True))
    show_and_wait(display, PIN)
    window = pygame.display.get_surface()
    assert window is not None
    ww, wh = window.get_size()
    assert (ww, wh) != LANDSCAPE.size
    scale = min(ww / LANDSCAPE.width, wh / LANDSCAPE.height)
    ox = (ww - round(LANDSCAPE.width * scale)) // 2
    oy = (wh - round(LANDSCAPE.height * scale)) // 2
    x, y = centre_of(PIN, fonts, UiInput(UiAction.DIGIT, "8"))
    post(
        pygame.FINGERDOWN, x=(ox + x * scale) / ww, y=(oy + y * scale) / wh, touch_id=1, finger_id=0
    )
    assert inputs.next() == UiInput(UiAction.DIGIT, "8")
    assert not pygame.mouse.get_visible(), "the kiosk hides the pointer"


def test_only_moving_icons_redraw_and_only_while_shown(start_display: StartDisplay) -> None:
    display, _ = start_display(WINDOWED)
    show_and_wait(display, Screen(ScreenId.VISUAL_WAIT))
    time.sleep(0.6)
    frames = display.frame_count
    assert frames >= 3, "the visual check wait pulses"
    show_and_wait(display, Screen(ScreenId.IDLE))
    before = display.frame_count
    time.sleep(0.4)
    assert display.frame_count == before
    assert display.render_count == 2


def test_the_idle_ui_thread_uses_almost_no_cpu(start_display: StartDisplay) -> None:
    display, _ = start_display(WINDOWED)
    show_and_wait(display, Screen(ScreenId.IDLE))
    thread = display.ui_thread
    assert thread is not None
    assert thread.ident is not None
    clock = time.pthread_getcpuclockid(thread.ident)
    time.sleep(0.2)
    cpu0, wall0 = time.clock_gettime(clock), time.monotonic()
    time.sleep(2.0)
    cpu = time.clock_gettime(clock) - cpu0
    percent = 100 * cpu / (time.monotonic() - wall0)
    print(f"idle UI thread: {percent:.2f} % of one core")
    assert percent < 2.0
    assert display.render_count == 1


def test_screenshot_is_exactly_what_render_draws(
    start_display: StartDisplay, fonts: Fonts, tmp_path: Path
) -> None:
    display, _ = start_display(WINDOWED)
    screen = Screen(ScreenId.CHOOSE_CHECK, Language.VI, tries_left=2)
    show_and_wait(display, screen)
    path = tmp_path / "shot.png"
    display.screenshot(path)
    shot = pygame.image.load(str(path))
    expected = render(screen, LANDSCAPE, fonts)
    assert shot.get_size() == LANDSCAPE.size
    assert pygame.image.tobytes(shot, "RGB") == pygame.image.tobytes(expected, "RGB")


def test_a_missing_font_fails_start_with_the_setting_named(tmp_path: Path) -> None:
    display = PygameDisplay(replace(WINDOWED, font_regular=tmp_path / "none.ttc"))
    with pytest.raises(ConfigError, match=r"\[display\] font_regular"):
        display.start(lambda _: None)
    assert display.ui_thread is None
    with pytest.raises(RuntimeError, match="not running"):
        display.screenshot(tmp_path / "x.png")


def test_a_failing_callback_does_not_stop_the_screen(
    start_display: StartDisplay, fonts: Fonts, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[UiInput] = []

    def explode(ui: UiInput) -> None:
        calls.append(ui)
        raise ValueError("the runner broke")

    display = PygameDisplay(WINDOWED)
    display.start(explode)
    try:
        show_and_wait(display, Screen(ScreenId.IDLE))
        post(pygame.KEYDOWN, key=pygame.K_ESCAPE, scancode=41, mod=0, unicode="")
        show_and_wait(display, Screen(ScreenId.LANGUAGES))
        post(pygame.KEYDOWN, key=pygame.K_ESCAPE, scancode=41, mod=0, unicode="")
        deadline = time.monotonic() + 3
        while not calls and time.monotonic() < deadline:
            time.sleep(0.02)
        assert calls == [UiInput(UiAction.CANCEL)]
        show_and_wait(display, Screen(ScreenId.IDLE))  # still drawing
        assert "on_input failed for cancel" in caplog.text
    finally:
        display.stop()
    assert display.error is None


def test_stop_ends_the_ui_thread(start_display: StartDisplay) -> None:
    display, _ = start_display(WINDOWED)
    thread = display.ui_thread
    assert thread is not None
    assert thread.is_alive()
    display.stop()
    assert not thread.is_alive()
    assert threading.active_count() >= 1


def test_without_voice_files_one_clear_warning(
    start_display: StartDisplay, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = replace(WINDOWED, voice=VoiceConfig(enabled=True, directory=tmp_path / "none"))
    display, _ = start_display(config)
    for screen in (Screen(ScreenId.IDLE), PIN, Screen(ScreenId.CHECKING)):
        show_and_wait(display, screen)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "kiosk voice build --out" in warnings[0].getMessage()


def test_each_new_prompt_plays_once_and_a_missing_file_warns_once(
    start_display: StartDisplay, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = voice.plan([Language.JA], only=["idle", "pin_entry-3", "pin_wrong-2"])
    voice.build(tmp_path, jobs)
    config = replace(WINDOWED, voice=VoiceConfig(enabled=True, volume=0.5, directory=tmp_path))
    display, _ = start_display(config)
    show_and_wait(display, Screen(ScreenId.IDLE))
    for digits in range(4):  # typing does not repeat the prompt
        show_and_wait(display, replace(PIN, digits_typed=digits))
    show_and_wait(display, replace(PIN, tries_left=2, wrong_pin=True))
    show_and_wait(display, Screen(ScreenId.IDLE, Language.EN))  # not built: warn
    show_and_wait(display, Screen(ScreenId.CHECKING, Language.EN))
    show_and_wait(display, Screen(ScreenId.IDLE, Language.EN))
    assert display.voice.played == [
        "ja/idle",
        "ja/pin_entry-3",
        "ja/pin_wrong-2",
        "en/idle",
        "en/checking",
        "en/idle",
    ]
    missing = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(missing) == 2, missing  # en/idle once, en/checking once
    assert all("kiosk voice build --out" in m for m in missing)


@pytest.mark.parametrize(
    "screen",
    [
        PIN,
        Screen(ScreenId.CHOOSE_CHECK, tries_left=3),
        Screen(ScreenId.CHOOSE_CHECK, pin_unavailable=PinUnavailable.LOCKED, tries_left=0),
    ],
    ids=["pin", "choice", "visual-only"],
)
def test_a_touch_on_call_staff_sends_the_call(
    start_display: StartDisplay, fonts: Fonts, screen: Screen
) -> None:
    display, inputs = start_display(WINDOWED)
    show_and_wait(display, screen)
    w, h = LANDSCAPE.size
    x, y = centre_of(screen, fonts, UiInput(UiAction.CALL_STAFF))
    post(pygame.FINGERDOWN, x=x / w, y=y / h, touch_id=1, finger_id=0)
    post(pygame.FINGERUP, x=x / w, y=y / h, touch_id=1, finger_id=0)
    assert inputs.next() == UiInput(UiAction.CALL_STAFF)
    assert inputs.none_within(0.2), "one touch, one call"
