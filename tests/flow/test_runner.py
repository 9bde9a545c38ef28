"""The runner with doubles: a virtual card in-process, a scripted reader, a fake clinic over
httpx's MockTransport; every effect really executed, every result fed back as an event."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from runner_support import (
    DEVICE_ID,
    READER,
    CardLink,
    FakeClinic,
    ListSink,
    RecordingBuzzer,
    RecordingDisplay,
    RecordingLights,
    ScriptedReader,
)

from kiosk.card.jpki import PinPolicy
from kiosk.errors import OutboxFull
from kiosk.flow.machine import (
    FlowMachine,
    FlowSettings,
    FlowTimeouts,
)
from kiosk.flow.notices import Notice
from kiosk.flow.runner import CardWorker, FlowRunner, Journal, ServerWorker
from kiosk.flow.screens import Language, PinUnavailable, ScreenId, UiAction, UiInput
from kiosk.hw.config import ReminderSchedule
from kiosk.hw.signals import LightSignal, Sound
from kiosk.sim.card import VirtualJpkiCard
from kiosk.sim.profile import CardKind, CardProfile

PIN = "4821"


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


@pytest.fixture
def make_profile(card_profile_factory):
    def make(kind: CardKind = CardKind.MYNUMBER, **options) -> CardProfile:
        options.setdefault("pin", PIN)
        return card_profile_factory(kind, **options)

    return make


@pytest.fixture
def harness(make_profile) -> Iterator[Harness]:
    made: list[Harness] = []

    def build(profile: CardProfile | None = None, **options) -> Harness:
        kiosk = Harness(profile or make_profile(), **options)
        made.append(kiosk)
        return kiosk.start()

    yield build  # type: ignore[misc]
    for kiosk in made:
        kiosk.stop()


def test_a_pin_check_runs_card_server_screen_lights_and_sound(harness) -> None:
    kiosk = harness()
    kiosk.place()
    entry = kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    assert entry.tries_left == 3
    kiosk.type(PIN)
    kiosk.display.wait_screen(ScreenId.RESULT_OK)
    assert kiosk.links[-1].verifies_with_pin() == 1
    assert kiosk.clinic.requests.count("POST /verifications") == 1
    assert (LightSignal.ELIGIBLE, 0) in kiosk.lit()
    assert kiosk.sounds()[:1] == [Sound.CARD_DETECTED]
    assert kiosk.sounds().count(Sound.KEY) == 4
    assert kiosk.sounds()[-1] is Sound.SUCCESS
    outcome = kiosk.records("verification.outcome")
    assert outcome[-1]["route"] == "ok"
    assert outcome[-1]["validity_code"] == 1


def test_the_challenge_is_fetched_while_the_patient_is_still_typing(harness) -> None:
    kiosk = harness()
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    deadline = time.monotonic() + 5
    while "POST /challenges" not in kiosk.clinic.requests:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    kiosk.type(PIN[:3])
    time.sleep(0.05)
    assert kiosk.clinic.requests == ["POST /challenges"], "nothing else before the 4th digit"
    kiosk.type(PIN[3])
    kiosk.display.wait_screen(ScreenId.RESULT_OK)
    assert kiosk.clinic.requests == ["POST /challenges", "POST /verifications"]


def test_the_certificate_is_read_and_the_pin_file_selected_before_the_fourth_digit(
    harness,
) -> None:
    kiosk = harness()
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    kiosk.type(PIN[:3])
    time.sleep(0.2)
    link = kiosk.links[-1]
    before = len(link.commands)
    kiosk.type(PIN[3])
    kiosk.display.wait_screen(ScreenId.RESULT_OK)
    after = [c[:2].hex() for c in link.commands[before:]]
    # VERIFY, SELECT the key, COMPUTE DIGITAL SIGNATURE: nothing else after the last digit
    assert after == ["0020", "00a4", "802a"]


def test_a_stale_challenge_is_fetched_again_and_the_connection_kept_warm(harness) -> None:
    kiosk = harness(challenge_max_age_s=0.3)
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    time.sleep(1.0)
    challenges = kiosk.clinic.requests.count("POST /challenges")
    assert challenges >= 3, "refreshed while the patient dawdles"
    kiosk.type(PIN)
    kiosk.display.wait_screen(ScreenId.RESULT_OK)
    assert kiosk.clinic.issued[-1] in kiosk.clinic.used or kiosk.clinic.issued[-2] in (
        kiosk.clinic.used
    )


def test_a_retry_answer_signs_a_fresh_challenge_without_sending_the_pin_again(harness) -> None:
    clinic = FakeClinic(answers=["retry", "eligible"])
    kiosk = harness(clinic=clinic)
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    kiosk.type(PIN)
    kiosk.display.wait_screen(ScreenId.RESULT_OK)
    link = kiosk.links[-1]
    assert link.verifies_with_pin() == 1
    assert sum(1 for c in link.commands if c[:2] == b"\x80\x2a") == 2, "signed twice"
    assert clinic.requests.count("POST /verifications") == 2
    assert kiosk.records("server.retry")


def test_a_wrong_pin_counts_down_on_the_card_and_the_screen(harness, make_profile) -> None:
    kiosk = harness(make_profile(pin_tries_left=3))
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    kiosk.type("0000")
    screen = kiosk.display.wait_for(lambda s: s.id is ScreenId.PIN_ENTRY and s.wrong_pin)
    assert screen.tries_left == 2
    assert kiosk.profile.pin_tries_left == 2
    kiosk.type("1111")
    choose = kiosk.display.wait_screen(ScreenId.CHOOSE_CHECK)
    assert choose.pin_unavailable is PinUnavailable.AT_FLOOR
    assert kiosk.profile.pin_tries_left == 1, "the last try is kept"
    assert [r["tries_left"] for r in kiosk.records("pin.wrong")] == [2, 1]


def test_pin_digits_never_appear_in_events_records_or_screens(harness) -> None:
    kiosk = harness()
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    kiosk.type(PIN)
    kiosk.display.wait_screen(ScreenId.RESULT_OK)
    kiosk.journal.flush()
    for text in (repr(kiosk.events), repr(kiosk.sink.records), repr(kiosk.display.screens)):
        assert PIN not in text
        for digit in set(PIN):
            assert f"'{digit}'" not in text


def test_a_card_taken_during_the_check_is_reported_and_nothing_is_stuck(harness) -> None:
    kiosk = harness(settings=FlowSettings(timeouts=FlowTimeouts(removed_early_s=0.5)))
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    kiosk.links[-1].delay_s = 0.2  # a slow card: the removal lands mid-command
    kiosk.type(PIN)
    kiosk.display.wait_screen(ScreenId.CHECKING)
    kiosk.take()
    kiosk.display.wait_screen(ScreenId.REMOVED_EARLY)
    kiosk.display.wait_screen(ScreenId.IDLE)


def test_the_visual_check_is_confirmed_with_the_staff_button(harness, make_profile) -> None:
    kiosk = harness(make_profile(pin_tries_left=0))
    kiosk.place()
    choose = kiosk.display.wait_screen(ScreenId.CHOOSE_CHECK)
    assert choose.pin_unavailable is PinUnavailable.LOCKED
    assert (LightSignal.STAFF_NEEDED, 0) in kiosk.lit()
    kiosk.press(UiAction.CHOOSE_VISUAL)
    kiosk.display.wait_screen(ScreenId.VISUAL_WAIT)
    assert kiosk.lit()[-1] == (LightSignal.VISUAL_CHECK_WAITING, 0)
    kiosk.runner.on_staff_press()
    kiosk.display.wait_screen(ScreenId.RESULT_OK)
    assert any(r.endswith("/confirm") for r in kiosk.clinic.requests)
    assert kiosk.links[-1].verifies_with_pin() == 0, "a locked card is never sent a PIN"


def test_the_visual_check_decided_on_the_dashboard_arrives_by_long_poll(
    harness, make_profile
) -> None:
    kiosk = harness(make_profile(pin=None))
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.CHOOSE_CHECK)
    kiosk.press(UiAction.CHOOSE_VISUAL)
    kiosk.display.wait_screen(ScreenId.VISUAL_WAIT)
    (vid,) = kiosk.clinic.awaiting()
    time.sleep(0.7)  # more than one long-poll goes by while staff look
    kiosk.clinic.decide(vid, "see_staff.rejected")
    screen = kiosk.display.wait_screen(ScreenId.NEEDS_STAFF)
    assert screen.notice is Notice.VISUAL_REJECTED
    assert kiosk.clinic.requests.count(f"GET /verifications/{vid}") >= 2


def test_an_unreachable_server_is_known_before_the_patient_types(harness) -> None:
    clinic = FakeClinic(down=True)
    kiosk = harness(clinic=clinic)
    kiosk.place()
    screen = kiosk.display.wait_screen(ScreenId.SERVER_UNREACHABLE)
    assert screen.notice is Notice.SERVER_UNREACHABLE
    assert kiosk.lit()[-1] == (LightSignal.STAFF_NEEDED, 0)
    time.sleep(0.3)
    assert kiosk.clinic.requests.count("POST /challenges") == 1, "no retry loop against it"


@pytest.mark.parametrize("when", ["prefetch", "verification"])
def test_a_failing_server_worker_gives_an_event_not_a_stuck_flow(harness, when: str) -> None:
    clinic = FakeClinic()
    if when == "prefetch":
        clinic.fail_with = RuntimeError("a bug in a library")
    kiosk = harness(clinic=clinic)
    kiosk.place()
    if when == "verification":
        kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
        while "POST /challenges" not in clinic.requests:
            time.sleep(0.01)
        clinic.fail_with = RuntimeError("a bug in a library")
        kiosk.type(PIN)
    screen = kiosk.display.wait_screen(ScreenId.NEEDS_STAFF, timeout=2)
    assert screen.notice is Notice.SERVER_ERROR


def test_a_hanging_server_is_caught_by_the_checking_timeout(harness) -> None:
    hang = threading.Event()
    clinic = FakeClinic()
    settings = FlowSettings(timeouts=FlowTimeouts(checking_s=0.5))
    kiosk = harness(clinic=clinic, settings=settings)
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    time.sleep(0.1)
    clinic.hang = hang
    try:
        kiosk.type(PIN)
        screen = kiosk.display.wait_screen(ScreenId.NEEDS_STAFF, timeout=5)
        assert screen.notice is Notice.SERVER_ERROR
    finally:
        hang.set()


def test_a_failing_outbox_does_not_stop_the_flow(harness) -> None:
    kiosk = harness()
    kiosk.sink.fail = OutboxFull("full")
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    kiosk.type(PIN)
    kiosk.display.wait_screen(ScreenId.RESULT_OK)
    kiosk.journal.flush()
    assert kiosk.journal.failures > 0


def test_the_reader_unplugged_and_back(harness) -> None:
    kiosk = harness()
    kiosk.reader.lose()
    kiosk.display.wait_screen(ScreenId.READER_MISSING)
    kiosk.reader.bring_back()
    kiosk.display.wait_screen(ScreenId.IDLE)


def test_a_missing_reader_at_start_is_shown(make_profile) -> None:
    kiosk = Harness(make_profile())
    kiosk.reader.readers = []
    kiosk.runner.start()
    try:
        kiosk.display.wait_screen(ScreenId.READER_MISSING)
    finally:
        kiosk.stop()


def test_the_card_left_on_the_reader_blinks_the_result_faster_and_beeps(harness) -> None:
    schedule = ReminderSchedule(remind_after_s=(0.2, 0.4, 0.6), repeat_s=1.0)
    timeouts = FlowTimeouts(after_removal_s=0.3)
    kiosk = harness(settings=FlowSettings(reminders=schedule, timeouts=timeouts))
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    kiosk.type(PIN)
    kiosk.display.wait_screen(ScreenId.RESULT_OK)
    kiosk.display.wait_for(lambda s: s.id is ScreenId.TAKE_CARD and s.reminder_level == 3)
    assert [s for s in kiosk.lit() if s[0] is LightSignal.ELIGIBLE] == [
        (LightSignal.ELIGIBLE, level) for level in (0, 1, 2, 3)
    ]
    assert [s for s in kiosk.sounds() if s.name.startswith("REMINDER")] == [
        Sound.REMINDER_1,
        Sound.REMINDER_2,
        Sound.REMINDER_3,
    ]
    kiosk.take()
    kiosk.display.wait_screen(ScreenId.RESULT_OK)
    kiosk.display.wait_screen(ScreenId.IDLE)


def test_staff_mode_shows_status_lines_and_the_language_comes_back(harness) -> None:
    kiosk = harness()
    kiosk.press(UiAction.OPEN_LANGUAGES)
    kiosk.press(UiAction.SET_LANGUAGE, Language.PT.value)
    kiosk.display.wait_for(lambda s: s.id is ScreenId.IDLE and s.language is Language.PT)
    kiosk.runner.on_staff_long_press()
    staff = kiosk.display.wait_screen(ScreenId.STAFF_MODE)
    assert staff.staff_lines == ("reader: present", "server: ok")
    kiosk.press(UiAction.STAFF_EXIT)
    idle = kiosk.display.wait_screen(ScreenId.IDLE)
    assert idle.language is Language.JA


def test_a_malformed_touch_is_ignored(harness) -> None:
    kiosk = harness()
    kiosk.press(UiAction.SET_LANGUAGE, "xx")
    kiosk.press(UiAction.DIGIT, "12")
    kiosk.press(UiAction.OPEN_LANGUAGES)
    kiosk.display.wait_screen(ScreenId.LANGUAGES)
    assert [s.id for s in kiosk.display.screens] == [ScreenId.IDLE, ScreenId.LANGUAGES]
    assert kiosk.runner.alive


def test_the_idle_runner_sleeps(harness) -> None:
    kiosk = harness()
    time.sleep(0.1)
    steps = kiosk.runner.steps
    cpu = time.process_time()
    time.sleep(1.0)
    assert kiosk.runner.steps == steps
    assert time.process_time() - cpu < 0.05, "nothing spins while nobody is there"


def test_events_of_an_old_card_never_reach_a_new_one(harness, make_profile) -> None:
    kiosk = harness()
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    kiosk.take()
    kiosk.display.wait_screen(ScreenId.REMOVED_EARLY)
    kiosk.place()
    kiosk.display.wait_for(lambda s: s.id is ScreenId.PIN_ENTRY and not s.wrong_pin)
    kiosk.type(PIN)
    kiosk.display.wait_screen(ScreenId.RESULT_OK)
    sessions = {e.session for e in kiosk.events if hasattr(e, "session")}
    assert len(sessions) == 2


def test_stopping_closes_every_thread(make_profile) -> None:
    before = set(threading.enumerate())
    kiosk = Harness(make_profile()).start()
    kiosk.place()
    kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
    kiosk.stop()
    time.sleep(0.1)
    left = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert not left
    assert kiosk.display.stopped
    assert kiosk.links[-1].closed, "the card link is reset: no verified PIN outlives the kiosk"
    assert kiosk.reader.closed


def test_a_patient_who_walks_away_mid_pin_leaves_no_digit_no_card_session_no_request(
    make_profile,
) -> None:
    kiosk = Harness(make_profile(), settings=FlowSettings(timeouts=FlowTimeouts(pin_entry_s=0.3)))
    entries = []
    make_entry = kiosk.card_worker.pin_entry

    def keep(session: int):
        entry = make_entry(session)
        entries.append(entry)
        return entry

    kiosk.card_worker.pin_entry = keep  # type: ignore[method-assign]
    kiosk.start()
    try:
        kiosk.place()
        screen = kiosk.display.wait_screen(ScreenId.PIN_ENTRY)
        kiosk.type(PIN[:3])
        kiosk.display.wait_for(lambda s: s.id is ScreenId.PIN_ENTRY and s.digits_typed == 3)
        kiosk.display.wait_screen(ScreenId.TAKE_CARD)
        assert screen.tries_left == 3
        (entry,) = entries
        assert len(entry) == 0, "the typed digits are wiped"
        assert not entry.spent, "and were never sent"
        assert kiosk.links[-1].verifies_with_pin() == 0
        assert "POST /verifications" not in kiosk.clinic.requests, "no record at the server"
        deadline = time.monotonic() + 2
        while not kiosk.links[-1].closed:  # the card is reset: no session survives
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert kiosk.card_worker.pin_entry(kiosk.runner.state.session) is None
    finally:
        kiosk.stop()
