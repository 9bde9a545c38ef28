"""The card layer through the real PC/SC stack: pyscard, pcscd, vpcd and the virtual card."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kiosk.bench.card import pin_and_sign
from kiosk.card import apdu
from kiosk.card.jpki import JpkiSession, PinPolicy, Token, pin_flow_apdu_budget
from kiosk.card.pcsc import PcscContext, PcscLink, Presence, PresenceMonitor, open_link
from kiosk.card.probe import probe, probe_reader
from kiosk.errors import (
    CardError,
    CardRemoved,
    CardTimeout,
    KioskError,
    NotMyNumberCard,
    PcscServiceGone,
    PinLocked,
    WrongPin,
)
from kiosk.sim.card import VirtualJpkiCard
from kiosk.sim.profile import CardKind, CardProfile
from kiosk.sim.vpcd import Faults, InsertedCard, inserted
from tests.support import PROJECT_ROOT

pytestmark = pytest.mark.pcsc

READER = "Virtual PCD 00 00"
PORT = 35963
ROOT = PROJECT_ROOT

MakeProfile = Callable[..., Path]


@pytest.fixture
def make_profile(make_card: Callable[..., VirtualJpkiCard]) -> MakeProfile:
    """A card profile file: each insertion loads it afresh, as a real card keeps its state."""

    def make(kind: CardKind = CardKind.MYNUMBER, **options: object) -> Path:
        path = make_card(kind, **options).profile.path
        assert path is not None
        return path

    return make


def fresh(path: Path) -> VirtualJpkiCard:
    """The card of a profile file, as it is now (a locked card comes back locked)."""
    return VirtualJpkiCard(CardProfile.load(path))


def place(card: VirtualJpkiCard, faults: Faults | None = None) -> ContextManager[InsertedCard]:
    """Put a card on the reader once pcscd has seen the previous one go."""
    wait_until_empty()
    return inserted(card, port=PORT, faults=faults)


def connect(slot: InsertedCard, *, command_timeout_s: float = 5.0) -> PcscLink:
    assert slot.wait_until_powered(5.0), "pcscd did not power the virtual card"
    with PcscContext() as context:
        deadline = time.monotonic() + 5
        while not context.card_present(READER):
            assert time.monotonic() < deadline, "pcscd does not report the card"
            time.sleep(0.02)
    return open_link(READER, command_timeout_s=command_timeout_s)


def wait_until_empty(timeout: float = 5.0) -> None:
    """pcscd notices a removal within about 400 ms; wait for it."""
    with PcscContext() as context:
        deadline = time.monotonic() + timeout
        while context.card_present(READER):
            assert time.monotonic() < deadline, "pcscd still reports a card"
            time.sleep(0.02)


def tries_on(path: Path) -> int:
    return CardProfile.load(path).pin_tries_left


def test_probe_reads_token_certificate_and_tries(pcscd: str, make_profile: MakeProfile) -> None:
    path = make_profile(pin_tries_left=2)
    card = fresh(path)
    with place(card) as slot:
        slot.wait_until_powered(5.0)
        result = probe_reader(READER)
    assert result.token is Token.MYNUMBER_CARD
    assert result.certificate is not None
    assert result.certificate.serial == card.profile.certificate().serial_number
    assert result.pin_tries_left == 2
    assert tries_on(path) == 2


def test_probe_command_prints_json_and_exits_zero(pcscd: str, make_profile: MakeProfile) -> None:
    path = make_profile()
    with place(fresh(path)) as slot:
        slot.wait_until_powered(5.0)
        out = subprocess.run(
            [sys.executable, "-m", "kiosk", "card", "probe", "--reader", READER, "--json"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
    document = json.loads(out.stdout)
    assert document["token"] == "mynumber_card"
    assert document["certificate"]["serial"] == str(
        CardProfile.load(path).certificate().serial_number
    )
    assert document["pin_tries_left"] == 3


@pytest.mark.parametrize(
    ("setup", "message"),
    [("none", "no card on"), ("non_jpki", "no JPKI application")],
)
def test_probe_command_says_one_line_and_fails(
    pcscd: str, make_profile: MakeProfile, setup: str, message: str
) -> None:
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kiosk", "card", "probe", "--reader", READER],
            capture_output=True,
            text=True,
            timeout=60,
        )

    if setup == "none":
        wait_until_empty()
        out = run()
    else:
        with place(fresh(make_profile(CardKind.NON_JPKI))) as slot:
            slot.wait_until_powered(5.0)
            out = run()
    assert out.returncode != 0
    assert out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1
    assert message in out.stderr


def test_tries_left_spend_nothing_over_many_probes(pcscd: str, make_profile: MakeProfile) -> None:
    path = make_profile()
    card = fresh(path)
    with place(card) as slot, connect(slot) as link:
        for _ in range(10):
            assert probe(link).pin_tries_left == 3
    assert tries_on(path) == 3
    assert not [c for c in card.apdu_log if c[:2] == b"\x00\x20" and len(c) > 4]


def test_pin_and_sign_through_pcscd_verifies_and_stays_in_budget(
    pcscd: str, make_profile: MakeProfile
) -> None:
    path = make_profile(pin="3141")
    card = fresh(path)
    with place(card) as slot, connect(slot) as link:
        session = JpkiSession(link)
        signature = pin_and_sign(session, "3141", b"bound to a nonce")
    public_key = card.profile.certificate().public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(signature, b"bound to a nonce", padding.PKCS1v15(), hashes.SHA256())
    certificate = card.profile.user_auth_certificate
    assert certificate is not None
    assert session.apdu_count <= pin_flow_apdu_budget(len(certificate))
    assert set(card.selected_aids) == {apdu.JPKI_AID}
    for forbidden in apdu.FORBIDDEN_AIDS:
        assert not any(forbidden in command for command in card.apdu_log)


def test_wrong_pins_count_down_lock_and_stay_locked(pcscd: str, make_profile: MakeProfile) -> None:
    path = make_profile(pin="1111")
    seen = []
    for _ in range(3):
        with place(fresh(path)) as slot, connect(slot) as link:
            session = JpkiSession(link, PinPolicy(floor=1))
            try:
                pin_and_sign(session, "2222")
            except WrongPin as exc:
                seen.append(exc.tries_left)
            except PinLocked:
                seen.append(0)
    assert seen == [2, 1, 0]
    card = fresh(path)
    with place(card) as slot, connect(slot) as link:
        session = JpkiSession(link)
        with pytest.raises(PinLocked):
            pin_and_sign(session, "1111")  # even the right PIN is never sent now
    assert not [c for c in card.apdu_log if c[:2] == b"\x00\x20" and len(c) > 4]


def test_default_floor_stops_at_one_try_and_a_correct_pin_resets(
    pcscd: str, make_profile: MakeProfile
) -> None:
    path = make_profile(pin="1111", pin_tries_left=2)
    with place(fresh(path)) as slot, connect(slot) as link:
        with pytest.raises(WrongPin):
            pin_and_sign(JpkiSession(link), "0000")
    assert tries_on(path) == 1
    with place(fresh(path)) as slot, connect(slot) as link:
        session = JpkiSession(link)
        session.open()
        assert session.pin_tries_left() == 1
        assert not session.may_ask_for_pin()
    path2 = make_profile(pin="1111", pin_tries_left=2)
    with place(fresh(path2)) as slot, connect(slot) as link:
        pin_and_sign(JpkiSession(link), "1111")
    assert tries_on(path2) == 3


def test_android_token_pin_before_certificate(pcscd: str, make_profile: MakeProfile) -> None:
    path = make_profile(CardKind.ANDROID, pin="2468")
    with place(fresh(path)) as slot, connect(slot) as link:
        session = JpkiSession(link)
        pin_and_sign(session, "2468")
        assert session.read_certificate() == CardProfile.load(path).user_auth_certificate


def test_non_jpki_card_is_refused_by_aid_not_atr(pcscd: str, make_profile: MakeProfile) -> None:
    with place(fresh(make_profile(CardKind.NON_JPKI))) as slot, connect(slot) as link:
        with pytest.raises(NotMyNumberCard):
            JpkiSession(link).open()


def _pin_flow_length(path: Path) -> int:
    card = fresh(path)
    with place(card) as slot, connect(slot) as link:
        pin_and_sign(JpkiSession(link), "1111")
    return len(card.apdu_log)


@pytest.mark.parametrize("pin", ["1111", "9999"])
def test_removal_at_every_apdu_gives_a_typed_error_and_spends_no_untyped_try(
    pcscd: str, make_profile: MakeProfile, pin: str
) -> None:
    """Pull the card upon each APDU of the PIN flow, the card acting on it or not.

    With the right PIN no removal may cost a try. With a wrong PIN the flow ends at VERIFY,
    so removals up to VERIFY are tried: only the VERIFY the patient typed may have cost one.
    """
    card = fresh(make_profile(pin="1111"))
    with place(card) as slot, connect(slot) as link:
        pin_and_sign(JpkiSession(link), "1111")
    length = len(card.apdu_log)
    verify_at = next(
        i + 1 for i, c in enumerate(card.apdu_log) if c[:4] == b"\x00\x20\x00\x80" and len(c) > 4
    )
    last = length if pin == "1111" else verify_at
    for n in range(1, last + 1):
        for processes in (False, True):
            path = make_profile(pin="1111")
            faults = Faults(remove_after=n, remove_processes=processes)
            with place(fresh(path), faults) as slot, connect(slot) as link:
                with pytest.raises(CardError) as caught:
                    pin_and_sign(JpkiSession(link), pin)
                assert caught.value.temporary, f"APDU {n}: {caught.value!r}"
            spent = 3 - tries_on(path)
            if pin == "9999" and n == verify_at and processes:
                assert spent == 1, "the card acted on the typed VERIFY before it was pulled"
            else:
                assert spent == 0, f"removal at APDU {n} cost a try"


def test_a_hanging_card_times_out(pcscd: str, make_profile: MakeProfile) -> None:
    faults = Faults(hang_after=3)
    with place(fresh(make_profile()), faults) as slot:
        link = connect(slot, command_timeout_s=1.0)
        session = JpkiSession(link)
        started = time.monotonic()
        with pytest.raises(CardTimeout):
            session.open()
        assert time.monotonic() - started < 3
        with pytest.raises(CardTimeout):
            session.read_certificate()
        link.close()


@pytest.mark.parametrize("how", ["truncate", "flip", "garbage"])
def test_corrupted_answers_give_typed_errors(
    pcscd: str, make_profile: MakeProfile, how: str
) -> None:
    for n in (1, 3, 5, 9):
        faults = Faults(corrupt_after=n, corrupt=how)  # type: ignore[arg-type]
        with place(fresh(make_profile(pin="1111")), faults) as slot:
            with connect(slot) as link, pytest.raises(KioskError):
                pin_and_sign(JpkiSession(link), "1111")


def test_presence_monitor_sees_insert_and_remove(pcscd: str, make_profile: MakeProfile) -> None:
    monitor = PresenceMonitor()
    try:
        events = _collect(monitor, lambda e: e.kind is Presence.READER_ADDED and e.reader == READER)
        assert events
        with place(fresh(make_profile())):
            assert _collect(
                monitor, lambda e: e.kind is Presence.CARD_INSERTED and e.reader == READER
            )
        assert _collect(monitor, lambda e: e.kind is Presence.CARD_REMOVED and e.reader == READER)
    finally:
        monitor.close()


def _collect(monitor: PresenceMonitor, wanted: Callable[..., bool], timeout: float = 8.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in monitor.poll(0.5):
            if wanted(event):
                return [event]
    return []


def stop_pcscd() -> None:
    """Stop pcscd and wait until it is gone."""
    subprocess.run(["pkill", "-TERM", "-x", "pcscd"], check=False)
    deadline = time.monotonic() + 10
    while subprocess.run(["pgrep", "-x", "pcscd"], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "pcscd did not stop"
        time.sleep(0.05)


def start_pcscd() -> None:
    subprocess.run(["sh", str(ROOT / "tests/services/pcscd.sh")], check=True, timeout=30)


@pytest.fixture
def stopped_pcscd(pcscd: str) -> Iterator[None]:
    """pcscd is stopped for the test and running again after it."""
    stop_pcscd()
    try:
        yield
    finally:
        start_pcscd()


def test_pcscd_restart_mid_session_is_survived(pcscd: str, make_profile: MakeProfile) -> None:
    path = make_profile(pin="1111")
    monitor = PresenceMonitor(retry_s=0.2)
    try:
        assert _collect(monitor, lambda e: e.kind is Presence.READER_ADDED)
        with place(fresh(path)) as slot:
            assert _collect(monitor, lambda e: e.kind is Presence.CARD_INSERTED)
            link = connect(slot)
            session = JpkiSession(link)
            session.open()
            stop_pcscd()  # pcscd goes away mid-session
            with pytest.raises(CardError) as caught:
                session.read_certificate()
            assert caught.value.temporary
            link.close()
            assert _collect(monitor, lambda e: e.kind is Presence.SERVICE_LOST)
            start_pcscd()
            assert _collect(monitor, lambda e: e.kind is Presence.SERVICE_BACK, timeout=15)
            assert _collect(
                monitor,
                lambda e: e.kind is Presence.CARD_INSERTED and e.reader == READER,
                timeout=15,
            )
            # a new session on the same card works without restarting anything
            with connect(slot) as link2:
                pin_and_sign(JpkiSession(link2), "1111")
    finally:
        monitor.close()
        start_pcscd()


def test_pcscd_gone_is_a_clear_error(stopped_pcscd: None) -> None:
    with pytest.raises(PcscServiceGone):
        PcscContext()
    out = subprocess.run(
        [sys.executable, "-m", "kiosk", "card", "probe"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "pcscd" in out.stderr
    start_pcscd()
    with PcscContext() as context:
        assert READER in context.readers()


def test_removed_card_error_is_card_removed(pcscd: str, make_profile: MakeProfile) -> None:
    with place(fresh(make_profile())) as slot:
        link = connect(slot)
        JpkiSession(link).open()
        slot.remove()
        time.sleep(0.6)
        with pytest.raises((CardRemoved, CardError)) as caught:
            JpkiSession(link).open()
        assert caught.value.temporary
        link.close()
