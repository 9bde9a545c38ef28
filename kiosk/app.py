"""The one composition root: every part of the kiosk built from validated config, wired, run.

Nothing else in the kiosk builds a reader, a pin factory, an HTTP client, an outbox or a
display: :func:`build_kiosk` does, from a :class:`~kiosk.config.KioskConfig`, and passes them
in (the HTTP client through :func:`~kiosk.clinic_client.open_clinic_client`, as the uploader
opens its own). There are no module-level singletons. A caller may hand in a part of its own
(the demo's recording display, a test's reader) through :class:`Parts`; everything else comes
from the config.

``kiosk run --config FILE`` (:func:`run`) is the appliance under systemd: READY=1 once the
idle screen is up, WATCHDOG=1 only while the flow loop answers, STOPPING=1 on SIGTERM.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from kiosk import __version__
from kiosk.card.jpki import Link, PinPolicy
from kiosk.card.pcsc import PcscContext, PresenceMonitor
from kiosk.clinic_client import ClinicClient, open_clinic_client
from kiosk.config import KioskConfig, load_config
from kiosk.errors import PcscServiceGone
from kiosk.flow.card_worker import CardWorker, Presences
from kiosk.flow.journal import Journal, RecordSink
from kiosk.flow.machine import FlowMachine
from kiosk.flow.runner import FlowRunner, Lights, Sounder
from kiosk.flow.screens import PatientDisplay, ScreenId
from kiosk.flow.server_worker import ServerWorker
from kiosk.hw.backend import Hardware, build_hardware
from kiosk.outbox.heartbeat import Heartbeat
from kiosk.outbox.queue import Outbox
from kiosk.update import slot_status

log = logging.getLogger(__name__)


@dataclass
class Parts:
    """Parts a caller supplies instead of those the config would build (demo, tests)."""

    display: PatientDisplay | None = None
    hardware: Hardware | None = None
    presences: Presences | None = None
    connect: Callable[[str], Link] | None = None
    list_readers: Callable[[], list[str]] | None = None
    #: wraps the display the config built (the demo records and photographs screens)
    wrap_display: Callable[[PatientDisplay], PatientDisplay] | None = None


@dataclass
class Kiosk:
    """The assembled appliance; :meth:`start` and :meth:`stop` (or ``with``)."""

    config: KioskConfig
    device_id: str
    runner: FlowRunner
    card: CardWorker
    server: ServerWorker
    display: PatientDisplay
    hardware: Hardware
    client: ClinicClient
    outbox: Outbox
    heartbeat: Heartbeat
    _closers: list[Callable[[], None]] = field(default_factory=list)
    _stop_heartbeat: threading.Event = field(default_factory=threading.Event)
    _heartbeat_thread: threading.Thread | None = None

    def start(self) -> Kiosk:
        self.runner.start()
        self._heartbeat_thread = threading.Thread(
            target=self.heartbeat.run, args=(self._stop_heartbeat,), name="heartbeat", daemon=True
        )
        self._heartbeat_thread.start()
        return self

    def stop(self) -> None:
        """Stop the flow, then release everything: lights out, card reset, sockets closed."""
        self._stop_heartbeat.set()
        try:
            self.runner.stop()
        finally:
            if self._heartbeat_thread is not None:
                self._heartbeat_thread.join(10.0)
            for close in reversed(self._closers):
                try:
                    close()
                except Exception:
                    log.exception("closing a part of the kiosk failed")
            self._closers.clear()

    def __enter__(self) -> Kiosk:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def status_lines(self) -> tuple[str, ...]:
        """Staff mode's facts: reader, server, outbox, version; no patient data."""
        reachable = self.server.reachable
        server = {True: "ok", False: "unreachable", None: "not asked yet"}[reachable]
        try:
            status = self.outbox.status()
            queue = f"{status.records} records queued, {status.level}"
            if status.alarms:
                queue += f" ({', '.join(status.alarms)})"
        except Exception as exc:  # a broken outbox is a fact to show, not a crash
            queue = f"error {type(exc).__name__}"
        return (
            f"device {self.device_id} - kiosk {__version__}",
            f"reader: {self.card.reader or 'auto'} - {self.card.reader_state()}",
            f"server: {self.config.server.url} - {server}",
            f"outbox: {queue}",
        )


def _list_readers() -> list[str]:
    with PcscContext() as context:
        return context.readers()


class PcscConnector:
    """Connects to the card on a reader through one PC/SC context, kept between cards.

    Establishing a context is a round trip to pcscd of its own; keeping one saves it at every
    card placement. A context that pcscd no longer knows (it restarted) is replaced once.
    Used from the card worker's thread only.
    """

    def __init__(self, command_timeout_s: float) -> None:
        self._command_timeout_s = command_timeout_s
        self._context: PcscContext | None = None

    def __call__(self, reader: str) -> Link:
        for attempt in (1, 2):
            if self._context is None:
                self._context = PcscContext()
            try:
                return self._context.connect(reader, command_timeout_s=self._command_timeout_s)
            except PcscServiceGone:
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        context, self._context = self._context, None
        if context is not None:
            context.release()


def default_display(config: KioskConfig) -> PatientDisplay:
    """The touch screen the config describes (pygame; KMSDRM on the Pi)."""
    from kiosk.ui.display import PygameDisplay

    display: PatientDisplay = PygameDisplay(config.display)
    return display


def build_kiosk(config: KioskConfig, parts: Parts | None = None) -> Kiosk:
    """Every part from ``config`` (or ``parts``), wired together; nothing started yet.

    On a failure everything already built is closed again, and the error (a ConfigError
    naming the setting, for a broken config) propagates.
    """
    parts = parts or Parts()
    closers: list[Callable[[], None]] = []

    def closing(close: Callable[[], None]) -> None:
        closers.append(close)

    try:
        identity = config.device.identity()
        device_id = identity.device_id
        client = open_clinic_client(config.server, config.device, identity)
        closing(client.close)
        outbox = config.outbox.open(device_id)
        closing(outbox.close)
        hardware = parts.hardware or build_hardware(config.gpio)
        if parts.hardware is None:
            closing(hardware.close)
        display = parts.display or default_display(config)
        if parts.wrap_display is not None:
            display = parts.wrap_display(display)

        runner_box: list[FlowRunner] = []

        def post(event: Any) -> None:
            runner_box[0].post(event)

        connect = parts.connect
        if connect is None:
            connector = PcscConnector(config.reader.command_timeout_s)
            closing(connector.close)
            connect = connector
        card = CardWorker(
            post,
            reader=config.reader.name,
            policy=PinPolicy(config.flow.pin_floor),
            connect=connect,
            presences=parts.presences or PresenceMonitor(),
            list_readers=parts.list_readers or _list_readers,
        )
        server = ServerWorker(
            client,
            post,
            challenge_max_age_s=config.server.challenge_max_age_s,
            long_poll_s=config.server.long_poll_s,
        )
        sink: RecordSink = outbox
        lights: Lights = hardware.lights
        buzzer: Sounder = hardware.buzzer
        kiosk_box: list[Kiosk] = []

        def status_lines() -> tuple[str, ...]:
            return kiosk_box[0].status_lines()

        runner = FlowRunner(
            FlowMachine(config.flow),
            display=display,
            lights=lights,
            buzzer=buzzer,
            card=card,
            server=server,
            journal=Journal(
                sink, device_id=device_id, reader=lambda: card.reader, depth=outbox.depth
            ),
            device_id=device_id,
            status_lines=status_lines,
        )
        runner_box.append(runner)
        hardware.button.on_press = runner.on_staff_press
        hardware.button.on_long_press = runner.on_staff_long_press
        heartbeat = Heartbeat(
            outbox,
            reader_state=card.reader_state,
            interval_s=config.heartbeat_interval_s,
            reporter=client,
            last_notice=lambda: runner.last_notice,
            update_slots=slot_status.published,
        )
        kiosk = Kiosk(
            config,
            device_id,
            runner,
            card,
            server,
            display,
            hardware,
            client,
            outbox,
            heartbeat,
            _closers=closers,
        )
        kiosk_box.append(kiosk)
        return kiosk
    except BaseException:
        for close in reversed(closers):
            try:
                close()
            except Exception:
                log.exception("closing a part after a failed start failed")
        raise


# --- kiosk run --------------------------------------------------------------------------------


@contextmanager
def _signals_set(stop: threading.Event) -> Iterator[None]:
    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(kiosk: Kiosk, stop: threading.Event, *, ready_timeout_s: float = 60.0) -> None:
    """Run ``kiosk`` until ``stop``: readiness and the watchdog for systemd meanwhile.

    The watchdog is fed only while the flow loop answers a ping, so a hung loop gets the
    unit restarted.
    """
    from kiosk.supervision import Notifier, Watchdog

    notifier = Notifier.from_env()
    watchdog = Watchdog.from_env(notifier)
    kiosk.start()
    try:
        deadline = time.monotonic() + ready_timeout_s
        while not kiosk.runner.shown(ScreenId.IDLE, ScreenId.READER_MISSING):
            if stop.wait(0.05) or time.monotonic() > deadline:
                break
        notifier.ready(f"idle, device {kiosk.device_id}")
        log.info(
            "kiosk %s ready, device %s",
            __version__,
            kiosk.device_id,
            extra={"DEVICE": kiosk.device_id, "READER": kiosk.card.reader},
        )
        interval = watchdog.max_block_s or 5.0
        while not stop.wait(interval):
            if kiosk.runner.responsive(within_s=interval):
                watchdog.progress()
            else:
                log.error("the flow loop does not answer: no watchdog ping")
        notifier.stopping("stopping")
    finally:
        kiosk.stop()


def run(config_path: Path, *, argv: Sequence[str] = ()) -> int:
    """``kiosk run``: the appliance. A broken config is one clear line and exit code 2."""
    from kiosk.supervision import configure_logging, stderr_is_journal

    configure_logging(journald=stderr_is_journal())
    config = load_config(config_path)
    kiosk = build_kiosk(config)
    stop = threading.Event()
    with _signals_set(stop):
        serve(kiosk, stop)
    return 0
