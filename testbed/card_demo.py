"""``kiosk demo --card-only``: the card layer end to end, on the real PC/SC stack, in a few seconds.

A population of virtual cards is generated, cards are placed on the vpcd reader one after
another, and the kiosk's own card layer probes them and runs a PIN-and-sign round, printing
what it sees. Nothing here is faked: pyscard, pcscd and the reader driver all run for real.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from contract.challenge import signed_message
from kiosk.card.jpki import JpkiSession, pin_flow_apdu_budget
from kiosk.card.pcsc import PcscContext, open_link
from kiosk.card.probe import probe
from kiosk.errors import KioskError, NoCard
from kiosk.sim.card import VirtualJpkiCard
from kiosk.sim.population import Population, generate_population
from kiosk.sim.profile import TimingModel
from kiosk.sim.vpcd import inserted

READER = "Virtual PCD 00 00"
PORT = 35963

#: Outcomes shown, in order, and what the demo does with each.
SHOWN = ("valid-employee", "android", "pin-one-try-left", "face-auth", "non-jpki")


def _wait(check: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise NoCard(f"timed out waiting until {what}")
        time.sleep(0.02)


def _round(population: Population, outcome: str, say: Callable[[str], None]) -> None:
    entry = population.card(outcome)
    profile = entry.load_profile()
    profile.timing = TimingModel.realistic()
    say(f"\n--- card {entry.id} ({outcome}) placed on {READER}")
    with PcscContext() as context:
        _wait(lambda: not context.card_present(READER), "the reader is empty")
        with inserted(VirtualJpkiCard(profile), port=PORT):
            _wait(lambda: context.card_present(READER), "pcscd sees the card")
            with open_link(READER) as link:
                try:
                    result = probe(link, reader=READER)
                except KioskError as exc:
                    say(f"probe: {exc}")
                    return
                say("\n".join("    " + line for line in result.to_text().splitlines()))
                say(f"    ({result.apdus} APDUs, {result.seconds * 1000:.0f} ms, no PIN try spent)")
            with open_link(READER) as link:
                _pin_round(JpkiSession(link), profile.pin, say)


def _pin_round(session: JpkiSession, pin: str | None, say: Callable[[str], None]) -> None:
    started = time.perf_counter()
    try:
        session.open()
        if not session.may_ask_for_pin():
            say(
                f"PIN: {session.pin_tries_left()} try left, below the kiosk's floor of "
                f"{session.policy.floor}: no PIN is asked for; staff check the photo instead"
            )
            return
        entry = session.pin_entry()
        for digit in pin or "":
            entry.type_digit(digit)
        session.verify_pin(entry)
        der = session.read_certificate()
        message = signed_message(b"demo-nonce-0001", "demo-kiosk", "pin")
        signature = session.sign(message)
    except KioskError as exc:
        say(f"PIN round: {exc}")
        return
    elapsed = time.perf_counter() - started
    public_key = x509.load_der_x509_certificate(der).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    try:
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        verdict = "verifies with the certificate's public key"
    except InvalidSignature:
        verdict = "DOES NOT VERIFY"
    say(
        f"PIN typed, VERIFY ok, signature of {len(signature)} bytes {verdict}; "
        f"{session.apdu_count} APDUs (budget {pin_flow_apdu_budget(len(der))}), "
        f"{elapsed * 1000:.0f} ms with the card timing model"
    )


def run(out: Path | None = None, say: Callable[[str], None] = print) -> int:
    """Generate a population and walk a few of its cards through the card layer."""
    with tempfile.TemporaryDirectory(prefix="kiosk-demo-") as tmp:
        root = out or Path(tmp) / "population"
        population = generate_population(root, 20, seed=2024)
        say(f"population of {len(population.cards)} virtual cards in {root}")
        for outcome in SHOWN:
            _round(population, outcome, say)
    return 0
