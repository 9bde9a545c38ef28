"""Doubles for the runner tests: a card in-process, a scripted reader, a fake clinic over
httpx's MockTransport (spoken to by the real ClinicClient), and recording screen, lights and
buzzer; and :class:`Harness`, the real machine, runner and workers around them. Nothing here
touches pcscd or the network."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from contract.challenge import signed_message
from kiosk.card.jpki import PinPolicy
from kiosk.card.pcsc import Presence, PresenceEvent
from kiosk.clinic_client import ClinicClient
from kiosk.errors import CardRemoved
from kiosk.flow.card_worker import CardWorker
from kiosk.flow.journal import Journal
from kiosk.flow.machine import FlowMachine
from kiosk.flow.runner import FlowRunner
from kiosk.flow.screens import Screen, ScreenId, UiAction, UiInput
from kiosk.flow.server_worker import ServerWorker
from kiosk.flow.settings import FlowSettings
from kiosk.hw.signals import LightSignal, Sound
from kiosk.sim.card import VirtualJpkiCard
from kiosk.sim.profile import CardProfile

READER = "Test Reader 00"
DEVICE_ID = "kiosk-runner-test"
#: The PIN of the harness's cards (``make_profile`` in the flow tests' conftest).
PIN = "4821"


class CardLink:
    """A virtual card as a link, in-process; ``remove()`` makes it fail like a removed card."""

    def __init__(self, card: VirtualJpkiCard) -> None:
        self.card = card
        self.removed = threading.Event()
        self.closed = False
        self.commands: list[bytes] = []
        self.delay_s = 0.0

    def transmit(self, command: bytes) -> bytes:
        if self.removed.is_set() or self.closed:
            raise CardRemoved("transmit: the card was removed")
        if self.delay_s:
            time.sleep(self.delay_s)
        self.commands.append(command)
        return self.card.process(command)

    def close(self) -> None:
        self.closed = True
        self.card.reset()

    def verifies_with_pin(self) -> int:
        """VERIFY commands that carried a PIN (never the PIN itself)."""
        return sum(1 for c in self.commands if c[1] == 0x20 and len(c) > 5)


class ScriptedReader:
    """Presence events the test pushes, as PresenceMonitor would report them."""

    def __init__(self) -> None:
        self._events: queue.Queue[PresenceEvent | None] = queue.Queue()
        self.readers = [READER]
        self.closed = False

    def poll(self, timeout_s: float) -> list[PresenceEvent]:
        try:
            event = self._events.get(timeout=min(timeout_s, 60.0))
        except queue.Empty:
            return []
        return [] if event is None else [event]

    def close(self) -> None:
        self.closed = True
        self._events.put(None)

    def insert(self) -> None:
        self._events.put(PresenceEvent(Presence.CARD_INSERTED, READER))

    def remove(self) -> None:
        self._events.put(PresenceEvent(Presence.CARD_REMOVED, READER))

    def lose(self) -> None:
        self.readers = []
        self._events.put(PresenceEvent(Presence.READER_REMOVED, READER))

    def bring_back(self) -> None:
        self.readers = [READER]
        self._events.put(PresenceEvent(Presence.READER_ADDED, READER))


@dataclass
class FakeClinic:
    """The kiosk API of a clinic server, scripted: ``answers`` are patient messages handed out
    in order to PIN verifications (default ``eligible``); visual checks wait for ``decide``."""

    device_id: str = DEVICE_ID
    answers: list[str] = field(default_factory=list)
    issued: list[bytes] = field(default_factory=list)
    used: set[bytes] = field(default_factory=set)
    verifications: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    #: the staff call reports taken (``POST /staff-calls``), in order
    staff_calls: list[dict[str, Any]] = field(default_factory=list)
    down: bool = False
    hang: threading.Event | None = None
    fail_with: Exception | None = None
    #: the clinic confirms visual checks on the dashboard only: the button gets 403
    refuse_button: bool = False
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def client(self) -> ClinicClient:
        http = httpx.Client(
            base_url="https://clinic.test", transport=httpx.MockTransport(self.handle)
        )
        return ClinicClient(http, retries=0)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/v1")
        self.requests.append(f"{request.method} {path}")
        if self.fail_with is not None:
            raise self.fail_with
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if self.hang is not None:
            self.hang.wait(30)
        if request.method == "POST" and path == "/challenges":
            nonce = os.urandom(32)
            self.issued.append(nonce)
            expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)
            return httpx.Response(
                201,
                json={"nonce": base64.b64encode(nonce).decode(), "expires_at": expires.isoformat()},
            )
        if request.method == "POST" and path == "/verifications":
            return httpx.Response(201, json=self._verify(json.loads(request.content)))
        if request.method == "GET" and path.startswith("/verifications/"):
            return httpx.Response(200, json=self._wait(path.split("/")[2], request))
        if request.method == "POST" and path == "/staff-calls":
            with self._cond:
                self.staff_calls.append(json.loads(request.content))
                self._cond.notify_all()
            return httpx.Response(204)
        if request.method == "POST" and path.endswith("/confirm"):
            if self.refuse_button:
                return httpx.Response(403, json={"detail": "staff were called"})
            return httpx.Response(200, json=self.decide(path.split("/")[2], "eligible"))
        return httpx.Response(404, json={"detail": "no route"})

    def _answer(self, vid: str, state: str, message: str, reason: str) -> dict[str, Any]:
        return {
            "verification_id": vid,
            "state": state,
            "reason_code": reason,
            "validity_code": 1 if message.startswith("eligible") else None,
            "patient_message": message,
            "staff_reason": "",
            "staff_reason_en": "",
            "temporary": message == "retry",
            "record": None,
            "created_at": "2026-01-01T00:00:00+09:00",
        }

    def _verify(self, body: dict[str, Any]) -> dict[str, Any]:
        nonce = base64.b64decode(body["nonce"])
        vid = os.urandom(16).hex()
        if nonce not in self.issued or nonce in self.used:
            return self._answer(vid, "done", "retry", "nonce.used")
        self.used.add(nonce)
        certificate = x509.load_der_x509_certificate(base64.b64decode(body["certificate"]))
        if body["mode"] == "visual":
            answer = self._answer(vid, "awaiting_staff", "wait_staff", "visual.awaiting_staff")
            self.verifications[vid] = answer
            return answer
        try:
            certificate.public_key().verify(  # type: ignore[union-attr, call-arg]
                base64.b64decode(body["signature"]),
                signed_message(nonce, self.device_id, "pin"),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return self._answer(vid, "done", "see_staff.signature", "signature.invalid")
        message = self.answers.pop(0) if self.answers else "eligible"
        answer = self._answer(vid, "done", message, message)
        self.verifications[vid] = answer
        return answer

    def _wait(self, vid: str, request: httpx.Request) -> dict[str, Any]:
        wait = float(request.url.params.get("wait", "0"))
        deadline = time.monotonic() + wait
        with self._cond:
            while self.verifications[vid]["state"] == "awaiting_staff":
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self.verifications[vid]

    def decide(self, vid: str, message: str) -> dict[str, Any]:
        with self._cond:
            answer = self._answer(vid, "done", message, message)
            self.verifications[vid] = answer
            self._cond.notify_all()
            return answer

    def awaiting(self) -> list[str]:
        with self._cond:
            return [v for v, a in self.verifications.items() if a["state"] == "awaiting_staff"]


class RecordingDisplay:
    """A PatientDisplay that keeps every screen and lets the test touch it."""

    def __init__(self) -> None:
        self.screens: list[Screen] = []
        self._on_input: Callable[[UiInput], None] | None = None
        self._changed = threading.Condition()
        self.started = self.stopped = False

    def start(self, on_input: Callable[[UiInput], None]) -> None:
        self._on_input = on_input
        self.started = True

    def show(self, screen: Screen) -> None:
        with self._changed:
            if not self.screens or self.screens[-1] != screen:
                self.screens.append(screen)
            self._changed.notify_all()

    def stop(self) -> None:
        self.stopped = True

    def press(self, ui: UiInput) -> None:
        assert self._on_input is not None
        self._on_input(ui)

    @property
    def current(self) -> Screen:
        return self.screens[-1]

    def wait_for(self, predicate: Callable[[Screen], bool], timeout: float = 5.0) -> Screen:
        with self._changed:
            if not self._changed.wait_for(
                lambda: bool(self.screens) and predicate(self.screens[-1]), timeout
            ):
                shown = [s.id.value for s in self.screens[-6:]]
                raise AssertionError(f"the screen did not come; last screens: {shown}")
            return self.screens[-1]

    def wait_screen(self, screen_id: ScreenId, timeout: float = 5.0) -> Screen:
        return self.wait_for(lambda s: s.id is screen_id, timeout)


@dataclass
class RecordingLights:
    shown: list[tuple[LightSignal, int]] = field(default_factory=list)

    def show(self, signal: LightSignal, *, reminder: int = 0) -> None:
        self.shown.append((signal, reminder))


@dataclass
class RecordingBuzzer:
    played: list[Sound] = field(default_factory=list)

    def play(self, sound: Sound) -> None:
        self.played.append(sound)


@dataclass
class ListSink:
    records: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail: Exception | None = None

    def append(self, kind: str, payload: Any) -> int:
        if self.fail is not None:
            raise self.fail
        self.records.append((kind, dict(payload)))
        return len(self.records)

    def kinds(self) -> list[str]:
        return [k for k, _ in self.records]


class Harness:
    """A kiosk with doubles around the real machine, runner and workers."""

    def __init__(
        self,
        profile: CardProfile,
        *,
        settings: FlowSettings | None = None,
        clinic: FakeClinic | None = None,
        challenge_max_age_s: float = 25.0,
        long_poll_s: float = 0.5,
    ) -> None:
        self.profile = profile
        self.card = VirtualJpkiCard(profile)
        self.links: list[CardLink] = []
        self.reader = ScriptedReader()
        self.clinic = clinic or FakeClinic()
        self.display = RecordingDisplay()
        self.lights = RecordingLights()
        self.buzzer = RecordingBuzzer()
        self.sink = ListSink()
        self.events: list[object] = []
        self.card_worker = CardWorker(
            self.post,
            reader=READER,
            policy=PinPolicy((settings or FlowSettings()).pin_floor),
            connect=self.connect,
            presences=self.reader,
            list_readers=lambda: list(self.reader.readers),
        )
        self.server = ServerWorker(
            self.clinic.client(),
            self.post,
            challenge_max_age_s=challenge_max_age_s,
            long_poll_s=long_poll_s,
        )
        self.journal = Journal(self.sink)
        self.runner = FlowRunner(
            FlowMachine(settings or FlowSettings()),
            display=self.display,
            lights=self.lights,
            buzzer=self.buzzer,
            card=self.card_worker,
            server=self.server,
            journal=self.journal,
            device_id=DEVICE_ID,
            status_lines=lambda: ("reader: present", "server: ok"),
        )
        self.runner.observers.append(lambda event, state, effects: self.events.append(event))

    def post(self, event: object) -> None:
        self.runner.post(event)  # type: ignore[arg-type]

    def connect(self, reader: str) -> CardLink:
        assert reader == READER
        link = CardLink(self.card)
        self.links.append(link)
        return link

    def start(self) -> Harness:
        self.runner.start()
        self.display.wait_screen(ScreenId.IDLE)
        return self

    def stop(self) -> None:
        self.runner.stop()

    def place(self) -> None:
        self.reader.insert()

    def take(self) -> None:
        for link in self.links:
            link.removed.set()
        self.reader.remove()

    def type(self, digits: str) -> None:
        for digit in digits:
            self.display.press(UiInput(UiAction.DIGIT, digit))

    def press(self, action: UiAction, value: str | None = None) -> None:
        self.display.press(UiInput(action, value))

    def lit(self) -> list[tuple[LightSignal, int]]:
        """What the lights were asked to show so far (they are driven on their own thread)."""
        assert self.runner.signals.flush()
        return self.lights.shown

    def sounds(self) -> list[Sound]:
        assert self.runner.signals.flush()
        return self.buzzer.played

    def records(self, kind: str) -> list[dict]:
        self.journal.flush()
        return [p for k, p in self.sink.records if k == kind]
