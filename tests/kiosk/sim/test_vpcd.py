"""The vpcd transport: framing, faults and timing against a stand-in for vpcd, then the real
PC/SC stack (pcscd + vpcd + pyscard's low-level ``smartcard.scard`` API) and OpenSC."""

from __future__ import annotations

import contextlib
import hashlib
import random
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from smartcard import scard

from kiosk.sim.card import CARD_FACE_AID, INPUT_SUPPORT_AID, JPKI_AID, VirtualJpkiCard
from kiosk.sim.profile import CardKind, CardProfile, TimingModel
from kiosk.sim.vpcd import (
    Faults,
    VpcdUnavailable,
    corrupt_response,
    insert,
    inserted,
)

SELECT_JPKI = bytes.fromhex("00A4040C0A") + JPKI_AID
SELECT_TOKEN_INFO = bytes.fromhex("00A4020C020006")
SELECT_PIN = bytes.fromhex("00A4020C020018")
SELECT_KEY = bytes.fromhex("00A4020C020017")
READ_LABEL = bytes.fromhex("00B0000020")
EMPTY_VERIFY = bytes.fromhex("00200080")
SHA256_DIGEST_INFO_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


def verify_pin(pin: str) -> bytes:
    return bytes.fromhex("0020008004") + pin.encode()


# --- a stand-in for vpcd: the transport without pcscd -------------------------------------------


class FakeVpcd:
    """The reader side of the vpcd protocol on an ephemeral port."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(5)
        self.port = self.server.getsockname()[1]
        self.connection: socket.socket | None = None

    def accept(self) -> None:
        self.connection, _ = self.server.accept()
        self.connection.settimeout(2)

    def send(self, payload: bytes) -> None:
        assert self.connection is not None
        self.connection.sendall(len(payload).to_bytes(2, "big") + payload)

    def receive(self) -> bytes | None:
        """The next framed message; None when the card closed or reset the connection."""
        assert self.connection is not None
        try:
            header = self.connection.recv(2, socket.MSG_WAITALL)
            if len(header) < 2:
                return None
            return self.connection.recv(int.from_bytes(header, "big"), socket.MSG_WAITALL)
        except ConnectionResetError:
            return None

    def exchange(self, apdu: bytes) -> bytes | None:
        self.send(apdu)
        return self.receive()

    def power_up(self) -> bytes | None:
        self.send(b"\x01")
        self.send(b"\x04")
        return self.receive()

    def drop(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def close(self) -> None:
        self.drop()
        self.server.close()


@pytest.fixture
def vpcd() -> Iterator[FakeVpcd]:
    fake = FakeVpcd()
    yield fake
    fake.close()


@pytest.fixture
def card(card_profile_factory) -> VirtualJpkiCard:
    return VirtualJpkiCard(card_profile_factory(CardKind.MYNUMBER))


def test_card_answers_the_vpcd_messages(vpcd, card):
    with inserted(card, port=vpcd.port) as slot:
        vpcd.accept()
        assert not slot.wait_until_powered(0)
        assert vpcd.power_up() == card.atr
        assert slot.wait_until_powered(1)
        assert vpcd.exchange(SELECT_JPKI) == b"\x90\x00"
        assert vpcd.exchange(SELECT_TOKEN_INFO) == b"\x90\x00"
        assert vpcd.exchange(READ_LABEL) == b"JPKIAPICCTOKEN2".ljust(32) + b"\x90\x00"
        vpcd.send(b"\x02")  # reset: the application is no longer selected
        assert vpcd.exchange(READ_LABEL) == b"\x69\x86"
        assert slot.apdu_count == 4
    assert card.apdu_log == [SELECT_JPKI, SELECT_TOKEN_INFO, READ_LABEL, READ_LABEL]
    assert slot.removed
    assert not card.powered


def test_removal_closes_the_connection(vpcd, card):
    slot = insert(card, port=vpcd.port)
    vpcd.accept()
    vpcd.power_up()
    slot.remove()
    assert vpcd.receive() is None
    slot.remove()  # removing twice is harmless


def test_remove_fault_leaves_without_answering_or_acting(vpcd, card_profile_factory):
    card = VirtualJpkiCard(card_profile_factory())
    with inserted(card, port=vpcd.port, faults=Faults(remove_after=3)) as slot:
        vpcd.accept()
        vpcd.power_up()
        assert vpcd.exchange(SELECT_JPKI) == b"\x90\x00"
        assert vpcd.exchange(SELECT_PIN) == b"\x90\x00"
        assert vpcd.exchange(verify_pin("9999")) is None
        assert slot.wait_until_removed(2)
        assert slot.apdu_count == 3
    assert card.apdu_log == [SELECT_JPKI, SELECT_PIN]
    assert CardProfile.load(card.profile.path).pin_tries_left == 3


def test_remove_fault_can_let_the_card_act_first(vpcd, card_profile_factory):
    card = VirtualJpkiCard(card_profile_factory())
    faults = Faults(remove_after=3, remove_processes=True)
    with inserted(card, port=vpcd.port, faults=faults) as slot:
        vpcd.accept()
        vpcd.power_up()
        vpcd.exchange(SELECT_JPKI)
        vpcd.exchange(SELECT_PIN)
        assert vpcd.exchange(verify_pin("9999")) is None
        assert slot.wait_until_removed(2)
    assert CardProfile.load(card.profile.path).pin_tries_left == 2


def test_hanging_card_answers_nothing_until_removed(vpcd, card):
    slot = insert(card, port=vpcd.port, faults=Faults(hang_after=2))
    vpcd.accept()
    vpcd.power_up()
    assert vpcd.exchange(SELECT_JPKI) == b"\x90\x00"
    vpcd.send(SELECT_TOKEN_INFO)
    vpcd.send(b"\x04")
    assert vpcd.connection is not None
    vpcd.connection.settimeout(0.3)
    with pytest.raises(TimeoutError):
        vpcd.connection.recv(2)
    vpcd.connection.settimeout(2)
    slot.remove()
    assert vpcd.receive() is None
    assert card.apdu_log == [SELECT_JPKI]


@pytest.mark.parametrize("how", ["truncate", "flip", "garbage"])
def test_corrupted_responses_from_the_nth_apdu(vpcd, card, how):
    faults = Faults(corrupt_after=2, corrupt=how)
    with inserted(card, port=vpcd.port, faults=faults):
        vpcd.accept()
        vpcd.power_up()
        assert vpcd.exchange(SELECT_JPKI) == b"\x90\x00"
        second = vpcd.exchange(SELECT_TOKEN_INFO)
        third = vpcd.exchange(READ_LABEL)
    truth = b"JPKIAPICCTOKEN2".ljust(32) + b"\x90\x00"
    assert second != b"\x90\x00"
    assert third != truth
    if how == "truncate":
        assert (second, third) == (b"\x90", truth[:-1])
    elif how == "flip":
        assert (second, third) == (b"\x91\x00", b"K" + truth[1:])
    else:
        assert (len(second or b""), len(third or b"")) == (2, len(truth))


def test_corruption_never_makes_an_empty_response():
    rng = random.Random(1)
    for how in ("truncate", "flip", "garbage"):
        assert corrupt_response(b"\x90\x00", how, rng)
        assert corrupt_response(b"\x90", how, rng)


@pytest.mark.parametrize(
    "faults",
    [{"remove_after": 0}, {"hang_after": -1}, {"corrupt_after": 1, "corrupt": "melt"}],
)
def test_nonsense_faults_are_refused(faults):
    with pytest.raises(ValueError, match=r"counts APDUs|unknown corruption"):
        Faults(**faults)


def test_the_card_reconnects_when_vpcd_drops_it(vpcd, card):
    with inserted(card, port=vpcd.port) as slot:
        vpcd.accept()
        vpcd.power_up()
        vpcd.exchange(SELECT_JPKI)
        vpcd.drop()  # pcscd stopped: the card stays on the reader
        vpcd.accept()
        assert not card.powered
        assert vpcd.power_up() == card.atr
        assert vpcd.exchange(READ_LABEL) == b"\x69\x86"  # a fresh session
        assert not slot.removed


def test_without_reconnect_a_drop_is_a_removal(vpcd, card):
    with inserted(card, port=vpcd.port, reconnect=False) as slot:
        vpcd.accept()
        vpcd.power_up()
        vpcd.drop()
        assert slot.wait_until_removed(2)


def test_timing_model_delays_answers_and_signatures(vpcd, card_profile_factory):
    timing = TimingModel(apdu_latency_s=0.05, bit_rate=0, signature_s=0.2)
    card = VirtualJpkiCard(card_profile_factory(timing=timing))
    with inserted(card, port=vpcd.port):
        vpcd.accept()
        vpcd.power_up()
        started = time.perf_counter()
        vpcd.exchange(SELECT_JPKI)
        assert 0.05 <= time.perf_counter() - started < 0.2
        vpcd.exchange(SELECT_PIN)
        vpcd.exchange(verify_pin("1234"))
        vpcd.exchange(SELECT_KEY)
        digest_info = SHA256_DIGEST_INFO_PREFIX + bytes(32)
        started = time.perf_counter()
        response = vpcd.exchange(b"\x80\x2a\x00\x80\x33" + digest_info + b"\x00")
        assert response is not None
        assert response[-2:] == b"\x90\x00"
        assert time.perf_counter() - started >= 0.25


def test_timing_can_be_overridden_and_removal_cuts_a_long_wait(vpcd, card):
    slot = insert(card, port=vpcd.port, timing=TimingModel(apdu_latency_s=30))
    vpcd.accept()
    vpcd.power_up()
    vpcd.send(SELECT_JPKI)
    time.sleep(0.1)
    started = time.perf_counter()
    slot.remove()
    assert time.perf_counter() - started < 1


def test_nothing_listening_is_vpcd_unavailable(card):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with pytest.raises(VpcdUnavailable, match="pcscd"):
        insert(card, port=port)


def test_no_thread_outlives_its_card(vpcd, card):
    before = set(threading.enumerate())
    with inserted(card, port=vpcd.port):
        vpcd.accept()
        assert len(set(threading.enumerate()) - before) == 1
    assert set(threading.enumerate()) == before


# --- through pcscd ------------------------------------------------------------------------------


class Pcsc:
    """The kiosk's view of a reader, through pyscard's low-level API."""

    def __init__(self, reader: str) -> None:
        self.reader = reader
        hresult, self.context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        assert hresult == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(hresult)

    def state(self) -> tuple[int, bytes]:
        hresult, states = scard.SCardGetStatusChange(
            self.context, 0, [(self.reader, scard.SCARD_STATE_UNAWARE)]
        )
        assert hresult == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(hresult)
        _, event_state, atr = states[0]
        return event_state, bytes(atr)

    def wait_until(self, *, present: bool, timeout: float = 5.0) -> bytes:
        """Wait until the reader shows a card (or none); returns the ATR."""
        deadline = time.monotonic() + timeout
        while True:
            event_state, atr = self.state()
            if bool(event_state & scard.SCARD_STATE_PRESENT) == present:
                return atr
            assert time.monotonic() < deadline, f"reader state {event_state:#x}"
            time.sleep(0.05)

    def connect(self) -> tuple[int, int]:
        hresult, handle, protocol = scard.SCardConnect(
            self.context, self.reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T1
        )
        assert hresult == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(hresult)
        return handle, protocol

    @staticmethod
    def transmit(connection: tuple[int, int], apdu: bytes) -> tuple[int, bytes]:
        handle, protocol = connection
        hresult, response = scard.SCardTransmit(handle, protocol, list(apdu))
        return hresult & 0xFFFFFFFF, bytes(response)

    @staticmethod
    def disconnect(connection: tuple[int, int]) -> None:
        scard.SCardDisconnect(connection[0], scard.SCARD_RESET_CARD)

    def release(self) -> None:
        scard.SCardReleaseContext(self.context)


@pytest.fixture
def pcsc(pcscd: str) -> Iterator[Pcsc]:
    reader = Pcsc(pcscd)
    reader.wait_until(present=False)  # nothing left over from another test
    yield reader
    reader.release()


@contextlib.contextmanager
def on_reader(pcsc: Pcsc, card: VirtualJpkiCard, **options) -> Iterator[tuple[int, int]]:
    """Insert ``card``, connect to it, and on the way out disconnect and remove it."""
    with inserted(card, **options) as slot:
        assert slot.wait_until_powered(5)
        assert pcsc.wait_until(present=True) == card.atr
        connection = pcsc.connect()
        try:
            yield connection
        finally:
            Pcsc.disconnect(connection)


REMOVED = {scard.SCARD_W_REMOVED_CARD & 0xFFFFFFFF, scard.SCARD_E_NOT_TRANSACTED & 0xFFFFFFFF}


@pytest.mark.pcsc
def test_insertion_is_seen_with_the_cards_atr(pcsc, card):
    with inserted(card) as slot:
        assert slot.wait_until_powered(5)
        atr = pcsc.wait_until(present=True)
        assert atr == card.atr
    pcsc.wait_until(present=False)


@pytest.mark.pcsc
def test_round_trip_through_pcscd_is_fast(pcsc, card):
    with on_reader(pcsc, card) as connection:
        assert Pcsc.transmit(connection, SELECT_JPKI) == (0, b"\x90\x00")
        assert Pcsc.transmit(connection, SELECT_TOKEN_INFO) == (0, b"\x90\x00")
        assert Pcsc.transmit(connection, READ_LABEL)[1][:15] == b"JPKIAPICCTOKEN2"
        durations = []
        for _ in range(200):
            started = time.perf_counter()
            Pcsc.transmit(connection, SELECT_TOKEN_INFO)
            durations.append(time.perf_counter() - started)
    # Nagle plus delayed ACK would make it about 44 ms; NODELAY and QUICKACK make it ~0.1 ms
    assert sorted(durations)[100] < 0.005


@pytest.mark.pcsc
def test_removal_is_seen_and_fails_the_next_command(pcsc, card):
    slot = insert(card)
    try:
        assert slot.wait_until_powered(5)
        pcsc.wait_until(present=True)
        connection = pcsc.connect()
        assert Pcsc.transmit(connection, SELECT_JPKI) == (0, b"\x90\x00")
    finally:
        slot.remove()
    pcsc.wait_until(present=False)
    hresult, _ = Pcsc.transmit(connection, SELECT_JPKI)
    assert hresult == scard.SCARD_W_REMOVED_CARD & 0xFFFFFFFF
    Pcsc.disconnect(connection)


@pytest.mark.pcsc
def test_remove_fault_mid_pin_flow_spends_no_try(pcsc, card_profile_factory):
    card = VirtualJpkiCard(card_profile_factory())
    with on_reader(pcsc, card, faults=Faults(remove_after=3)) as connection:
        Pcsc.transmit(connection, SELECT_JPKI)
        Pcsc.transmit(connection, SELECT_PIN)
        hresult, response = Pcsc.transmit(connection, verify_pin("9999"))
        # vpcd reports the closed socket as an empty answer; then the card is gone
        assert (hresult, response) == (0, b"") or hresult in REMOVED
        assert Pcsc.transmit(connection, EMPTY_VERIFY)[0] in REMOVED
        pcsc.wait_until(present=False)
    assert CardProfile.load(card.profile.path).pin_tries_left == 3


@pytest.mark.pcsc
def test_a_card_put_back_at_once_is_powered_again(pcsc, card_profile_factory):
    """pcscd learns of this removal from the failed command, not from its presence poll; the
    next insertion must still be seen as one (insert waits for a poll to pass)."""
    first = VirtualJpkiCard(card_profile_factory())
    with on_reader(pcsc, first, faults=Faults(remove_after=1)) as connection:
        hresult, response = Pcsc.transmit(connection, SELECT_JPKI)
        assert (hresult, response) == (0, b"") or hresult in REMOVED
    second = VirtualJpkiCard(card_profile_factory())
    with on_reader(pcsc, second) as connection:
        assert Pcsc.transmit(connection, SELECT_JPKI) == (0, b"\x90\x00")


@pytest.mark.pcsc
def test_hanging_card_blocks_the_command_until_removed(pcsc, card):
    outcome: list[tuple[int, bytes]] = []
    slot = insert(card, faults=Faults(hang_after=2))
    try:
        assert slot.wait_until_powered(5)
        pcsc.wait_until(present=True)
        connection = pcsc.connect()
        Pcsc.transmit(connection, SELECT_JPKI)
        waiter = threading.Thread(
            target=lambda: outcome.append(Pcsc.transmit(connection, SELECT_TOKEN_INFO))
        )
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive()
    finally:
        slot.remove()
    waiter.join(5)
    assert not waiter.is_alive()
    hresult, response = outcome[0]
    assert (hresult, response) == (0, b"") or hresult in REMOVED
    Pcsc.disconnect(connection)
    pcsc.wait_until(present=False)


@pytest.mark.pcsc
def test_corrupted_response_reaches_the_client(pcsc, card):
    with on_reader(pcsc, card, faults=Faults(corrupt_after=2, corrupt="flip")) as connection:
        assert Pcsc.transmit(connection, SELECT_JPKI) == (0, b"\x90\x00")
        assert Pcsc.transmit(connection, SELECT_TOKEN_INFO) == (0, b"\x91\x00")


@pytest.mark.pcsc
def test_a_pin_locked_through_pcscd_stays_locked_on_the_next_insertion(pcsc, card_profile_factory):
    profile = card_profile_factory()
    with on_reader(pcsc, VirtualJpkiCard(profile)) as connection:
        Pcsc.transmit(connection, SELECT_JPKI)
        Pcsc.transmit(connection, SELECT_PIN)
        assert Pcsc.transmit(connection, EMPTY_VERIFY) == (0, b"\x63\xc3")
        answers = [Pcsc.transmit(connection, verify_pin("0000"))[1] for _ in range(3)]
        assert answers == [b"\x63\xc2", b"\x63\xc1", b"\x63\xc0"]
    pcsc.wait_until(present=False)
    again = VirtualJpkiCard(CardProfile.load(profile.path))
    with on_reader(pcsc, again) as connection:
        Pcsc.transmit(connection, SELECT_JPKI)
        Pcsc.transmit(connection, SELECT_PIN)
        assert Pcsc.transmit(connection, EMPTY_VERIFY) == (0, b"\x69\x84")
        assert Pcsc.transmit(connection, verify_pin(profile.pin or "")) == (0, b"\x69\x84")


@pytest.mark.pcsc
def test_signature_through_pcscd_verifies_with_the_certificate(pcsc, card):
    message = b"nonce from the clinic server"
    digest_info = SHA256_DIGEST_INFO_PREFIX + hashlib.sha256(message).digest()
    with on_reader(pcsc, card) as connection:
        Pcsc.transmit(connection, SELECT_JPKI)
        Pcsc.transmit(connection, bytes.fromhex("00A4020C02000A"))
        first = Pcsc.transmit(connection, bytes.fromhex("00B0000000"))[1]
        length = 4 + int.from_bytes(first[2:4], "big")
        der = first[:-2]
        while len(der) < length:
            offset = len(der)
            apdu = bytes([0x00, 0xB0, offset >> 8, offset & 0xFF, min(256, length - offset) % 256])
            der += Pcsc.transmit(connection, apdu)[1][:-2]
        Pcsc.transmit(connection, SELECT_PIN)
        assert Pcsc.transmit(connection, verify_pin("1234")) == (0, b"\x90\x00")
        Pcsc.transmit(connection, SELECT_KEY)
        apdu = b"\x80\x2a\x00\x80" + bytes([len(digest_info)]) + digest_info + b"\x00"
        hresult, response = Pcsc.transmit(connection, apdu)
    assert hresult == 0
    assert response[-2:] == b"\x90\x00"
    public_key = x509.load_der_x509_certificate(der[:length]).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(response[:-2], message, padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.pcsc
def test_second_reader_port(pcscd, card):
    second = Pcsc("Virtual PCD 00 01")
    try:
        second.wait_until(present=False)
        with inserted(card, port=35964) as slot:
            assert slot.wait_until_powered(5)
            assert second.wait_until(present=True) == card.atr
        second.wait_until(present=False)
    finally:
        second.release()


# --- OpenSC, an independent JPKI client, as a cross-check of the emulator ------------------------


def _pkcs15_tool(*arguments: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("pkcs15-tool")
    assert tool, "pkcs15-tool is missing: install Debian's opensc (provisioning/debian-packages)"
    return subprocess.run(
        [tool, "--reader", "0", *arguments], capture_output=True, text=True, timeout=60
    )


@pytest.mark.pcsc
def test_opensc_reads_the_virtual_card_as_a_jpki_token(pcsc, card):
    """OpenSC's own JPKI driver recognises the emulator (by selecting the JPKI AID), lists its
    certificates and PINs with the tries left, and reads the user-authentication certificate."""
    with inserted(card) as slot:
        assert slot.wait_until_powered(5)
        pcsc.wait_until(present=True)
        listing = _pkcs15_tool("--list-certificates")
        pins = _pkcs15_tool("--list-pins")
        certificate = _pkcs15_tool("--read-certificate", "01")
    assert listing.returncode == 0, listing.stderr
    assert "User Authentication Certificate" in listing.stdout
    assert "Path           : 000a" in listing.stdout
    assert pins.returncode == 0, pins.stderr
    assert "Tries left     : 3" in pins.stdout
    assert certificate.returncode == 0, certificate.stderr
    read = x509.load_pem_x509_certificate(certificate.stdout.encode())
    assert read == card.profile.certificate()
    assert INPUT_SUPPORT_AID not in card.selected_aids
    assert CARD_FACE_AID not in card.selected_aids
    assert card.profile.pin_tries_left == 3  # OpenSC asked for the tries, spent none
