"""The touch screen: :class:`PygameDisplay`, the kiosk's ``PatientDisplay``.

pygame runs in one UI thread of its own: it opens the display, reads events, draws and plays
the voice; nothing else touches pygame. :meth:`PygameDisplay.show` only hands the screen over
and wakes the thread, so the flow never waits for drawing.

Idle costs next to nothing. The thread sleeps on a :class:`threading.Event` that ``show`` and
``stop`` set, and wakes every :data:`POLL_INTERVAL_S` only to collect input events (SDL's
KMSDRM back-end has no way to block on input, and ``pygame.event.wait`` polls every
millisecond inside). A screen is drawn once when it changes, never again while it stays
equal; only an animated icon (reading, checking, the visual check, a card left behind)
redraws its own square a few times a second.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pygame

from kiosk.flow.screens import Language, Screen, UiInput
from kiosk.ui.catalog import Catalog, default_catalogs
from kiosk.ui.config import DisplayConfig
from kiosk.ui.fonts import Fonts
from kiosk.ui.input import InputMapper
from kiosk.ui.layouts import Layout, layout_named
from kiosk.ui.render import Frame, draw
from kiosk.ui.screen_mode import open_screen, present, viewport
from kiosk.ui.voice import VoicePlayer

log = logging.getLogger(__name__)

#: How often the idle UI thread collects input events.
POLL_INTERVAL_S = 0.02
#: How long start() waits for the display to open.
START_TIMEOUT_S = 30.0

_EVENTS = (
    pygame.QUIT,
    pygame.KEYDOWN,
    pygame.MOUSEBUTTONDOWN,
    pygame.MOUSEBUTTONUP,
    pygame.FINGERDOWN,
    pygame.FINGERUP,
    pygame.WINDOWEXPOSED,
)


class PygameDisplay:
    """The fullscreen touch UI (KMSDRM on the kiosk, a window in the demo, dummy in tests)."""

    def __init__(
        self,
        config: DisplayConfig,
        *,
        catalogs: Mapping[Language, Catalog] | None = None,
        on_quit: Callable[[], None] | None = None,
        poll_interval_s: float = POLL_INTERVAL_S,
    ) -> None:
        self.config = config
        self.layout: Layout = layout_named(config.layout)
        self.catalogs = catalogs or default_catalogs()
        self.voice = VoicePlayer(config.voice)
        self.on_quit = on_quit
        self.poll_interval_s = poll_interval_s
        self._on_input: Callable[[UiInput], None] | None = None
        self._lock = threading.Lock()
        self._drawn = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._pending: Screen | None = None
        self._requests: list[Callable[[], None]] = []
        self._thread: threading.Thread | None = None
        self._last_shown: Screen | None = None
        self._frame: Frame | None = None
        #: the error that ended the UI thread, if one did
        self.error: BaseException | None = None
        #: full redraws (a new screen) and animation frames, for tests and the benchmark
        self.render_count = 0
        self.frame_count = 0

    # --- the PatientDisplay protocol --------------------------------------------------------

    def start(self, on_input: Callable[[UiInput], None]) -> None:
        if self._thread is not None:
            raise RuntimeError("the display is already started")
        self._on_input = on_input
        self._thread = threading.Thread(target=self._run, name="kiosk-ui", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError("the display did not open in time")
        if self.error is not None:
            self._thread.join()
            self._thread = None
            raise self.error

    def show(self, screen: Screen) -> None:
        with self._lock:
            self._pending = screen
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    # --- for tests, the demo and the benchmark --------------------------------------------

    @property
    def last_shown(self) -> Screen | None:
        """The screen drawn last (not merely asked for)."""
        with self._lock:
            return self._last_shown

    @property
    def ui_thread(self) -> threading.Thread | None:
        return self._thread

    def wait_shown(self, screen: Screen, timeout: float = 5.0) -> bool:
        """Wait until ``screen`` is drawn; False on timeout."""
        with self._drawn:
            return self._drawn.wait_for(lambda: self._last_shown == screen, timeout)

    def screenshot(self, path: Path, timeout: float = 5.0) -> None:
        """Save what is on screen as a PNG (done by the UI thread)."""
        done = threading.Event()
        failure: list[BaseException] = []

        def save() -> None:
            try:
                if self._frame is None:
                    raise RuntimeError("nothing is shown yet")
                pygame.image.save(self._frame.surface, str(path))
            except (pygame.error, OSError, RuntimeError) as exc:
                failure.append(exc)
            finally:
                done.set()

        if self._thread is None:
            raise RuntimeError("the display is not running")
        with self._lock:
            self._requests.append(save)
        self._wake.set()
        if not done.wait(timeout):
            raise RuntimeError("the UI thread did not answer")
        if failure:
            raise failure[0]

    # --- the UI thread --------------------------------------------------------------------

    def _open(self) -> tuple[pygame.Surface, Fonts, InputMapper]:
        if self.config.video_driver is not None:
            os.environ["SDL_VIDEODRIVER"] = self.config.video_driver
        pygame.display.init()
        size = self.layout.size
        window = open_screen(size, fullscreen=self.config.fullscreen)
        pygame.event.set_blocked(None)  # motion and window chatter never queue up
        pygame.event.set_allowed(list(_EVENTS))
        pygame.key.set_repeat()  # a held key is one press
        fonts = Fonts(self.config.font_regular, self.config.font_bold)
        self.voice.start()
        return window, fonts, InputMapper(viewport(window.get_size(), size))

    def _run(self) -> None:
        try:
            window, fonts, mapper = self._open()
        except BaseException as exc:  # handed to start()'s caller
            self.error = exc
            pygame.display.quit()
            self._ready.set()
            return
        self._ready.set()
        canvas = pygame.Surface(self.layout.size)
        shown: Screen | None = None
        next_frame_at: float | None = None
        frame_number = 0
        try:
            while not self._stopping.is_set():
                # cleared before reading what show() left, so a show() from now on wakes us
                self._wake.clear()
                for event in pygame.event.get():
                    self._dispatch(event, mapper, window)
                with self._lock:
                    pending, requests, self._requests = self._pending, self._requests, []
                if pending is not None and pending != shown:
                    frame = draw(pending, self.layout, fonts, self.catalogs, canvas)
                    present(window, canvas)
                    shown = pending
                    mapper.show(frame, time.monotonic())
                    self.voice.screen_changed(pending)
                    interval = frame.frame_interval_s()
                    next_frame_at = None if interval is None else time.monotonic() + interval
                    frame_number = 0
                    with self._drawn:
                        self._frame = frame
                        self._last_shown = pending
                        self.render_count += 1
                        self._drawn.notify_all()
                for request in requests:
                    request()
                timeout = self.poll_interval_s
                if next_frame_at is not None and self._frame is not None:
                    now = time.monotonic()
                    if now >= next_frame_at:
                        frame_number += 1
                        changed = self._frame.animate(frame_number)
                        present(window, canvas, changed)
                        self.frame_count += 1
                        interval = self._frame.frame_interval_s() or self.poll_interval_s
                        next_frame_at += interval
                        if next_frame_at < now:  # fell behind (a busy machine): skip ahead
                            next_frame_at = now + interval
                    timeout = max(0.0, min(timeout, next_frame_at - time.monotonic()))
                self._wake.wait(timeout)
        except BaseException as exc:
            self.error = exc
            log.exception("the UI thread stopped")
            raise
        finally:
            self.voice.stop()
            pygame.display.quit()

    def _dispatch(
        self, event: pygame.event.Event, mapper: InputMapper, window: pygame.Surface
    ) -> None:
        if event.type == pygame.QUIT:
            if self.on_quit is not None:
                self.on_quit()
            return
        if event.type == pygame.WINDOWEXPOSED:
            if self._frame is not None:
                present(window, self._frame.surface)
            return
        ui_input = mapper.handle(event, time.monotonic())
        if ui_input is None or self._on_input is None:
            return
        try:
            self._on_input(ui_input)
        except Exception:
            log.exception("on_input failed for %s", ui_input.action.value)
