"""``kiosk bench card``: APDUs and time of a probe and of a PIN-and-sign flow through pcscd.

At the counter (``--card-on-reader``), the card that lies on the named reader (a real reader,
a real card) is probed ``runs`` times: token, certificate and tries left, which spends no PIN
try and sends no PIN. This tells a maintainer what the reader and the card cost per APDU on
that unit.

Without it, a virtual My Number card with the realistic timing model (about 10 ms per APDU,
424 kbit/s, 350 ms per signature) is inserted into the vpcd reader, and the kiosk's own card
layer talks to it through the real PC/SC stack. The same flows also run with the timing model
off, which shows what the stack itself (pyscard, pcscd, the reader driver, the kernel) costs
per APDU.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from kiosk.card.jpki import JpkiSession, Link, pin_flow_apdu_budget
from kiosk.card.pcsc import PcscContext
from kiosk.card.probe import probe
from kiosk.errors import NoCard
from kiosk.sim.card import VirtualJpkiCard
from kiosk.sim.pki import TestJpkiCa
from kiosk.sim.profile import CardKind, CardProfile, TimingModel
from kiosk.sim.vpcd import inserted

PIN = "4071"


@dataclass(frozen=True)
class FlowFigures:
    apdus: int
    seconds: float
    seconds_min: float

    def to_json(self) -> dict[str, Any]:
        return {
            "apdus": self.apdus,
            "seconds": round(self.seconds, 4),
            "seconds_min": round(self.seconds_min, 4),
        }


def pin_and_sign(session: JpkiSession, pin: str, message: bytes = b"challenge") -> bytes:
    """The whole card side of a PIN check: identify, certificate, tries, VERIFY, sign."""
    session.open()
    if not session.needs_pin_for_certificate:  # a phone shows it only after VERIFY
        session.read_certificate()
    session.pin_tries_left()
    entry = session.pin_entry()
    for digit in pin:
        entry.type_digit(digit)
    session.verify_pin(entry)
    return session.sign(message)


def _wait_for_card(context: PcscContext, reader: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not context.card_present(reader):
        if time.monotonic() > deadline:
            raise NoCard(f"no card appeared on {reader} within {timeout_s:.0f} s")
        time.sleep(0.01)


def _probe_flow(link: Link) -> int:
    return probe(link).apdus


def _pin_flow(link: Link) -> int:
    session = JpkiSession(link)
    pin_and_sign(session, PIN, b"bench challenge")
    return session.apdu_count


def _measure(
    runs: int, flow: Callable[[Link], int], reader: str, wait_s: float = 5.0
) -> FlowFigures:
    """Run ``flow`` (which returns its APDU count) ``runs`` times on fresh connections."""
    times: list[float] = []
    apdus = 0
    with PcscContext() as context:
        _wait_for_card(context, reader, wait_s)
        for _ in range(runs):
            with context.connect(reader) as link:
                started = time.perf_counter()
                apdus = flow(link)
                times.append(time.perf_counter() - started)
    return FlowFigures(apdus, statistics.median(times), min(times))


def run(*, runs: int = 5, port: int = 35963, reader: str = "Virtual PCD 00 00") -> dict[str, Any]:
    """Run the benchmark and return its figures."""
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-card-") as tmp:
        ca = TestJpkiCa.create()
        profile = CardProfile.generate(
            CardKind.MYNUMBER, ca, id="bench", pin=PIN, path=Path(tmp) / "bench.toml"
        )
        certificate_bytes = len(profile.certificate().public_bytes(Encoding.DER))
        figures: dict[str, Any] = {"certificate_bytes": certificate_bytes, "runs": runs}
        for label, timing in (("", TimingModel.realistic()), ("stack_", TimingModel())):
            card = VirtualJpkiCard(CardProfile.load(Path(tmp) / "bench.toml"))
            with inserted(card, port=port, timing=timing):
                probe_figures = _measure(runs, _probe_flow, reader)
                flow_figures = _measure(runs, _pin_flow, reader)
            figures[f"{label}probe"] = probe_figures.to_json()
            figures[f"{label}pin_flow"] = flow_figures.to_json()
        figures["pin_flow"]["apdu_budget"] = pin_flow_apdu_budget(certificate_bytes)
        stack = figures["stack_pin_flow"]
        figures["stack_ms_per_apdu"] = round(stack["seconds"] * 1000 / stack["apdus"], 3)
        return figures


def run_on_reader(*, runs: int = 5, reader: str, wait_s: float = 30.0) -> dict[str, Any]:
    """Probe the card on ``reader`` ``runs`` times (no PIN is sent, no try is spent)."""
    with PcscContext() as context:
        _wait_for_card(context, reader, wait_s)
        with context.connect(reader) as link:
            first = probe(link)
    figures = _measure(runs, _probe_flow, reader, wait_s)
    return {
        "reader": reader,
        "runs": runs,
        "token": first.token.value,
        "pin_tries_left": first.pin_tries_left,
        "probe": figures.to_json(),
        "ms_per_apdu": round(figures.seconds * 1000 / max(1, figures.apdus), 3),
    }


def reader_to_text(figures: dict[str, Any]) -> str:
    p = figures["probe"]
    tries = figures["pin_tries_left"]
    return "\n".join(
        [
            f"reader: {figures['reader']}; card: {figures['token']}; median of "
            f"{figures['runs']} runs",
            f"  probe  {p['apdus']:3d} APDUs  {p['seconds'] * 1000:8.1f} ms"
            f"  ({figures['ms_per_apdu']} ms per APDU)",
            f"  PIN tries left: {'unknown' if tries is None else tries} (none spent)",
        ]
    )


def to_text(figures: dict[str, Any]) -> str:
    p, f = figures["probe"], figures["pin_flow"]
    sp, sf = figures["stack_probe"], figures["stack_pin_flow"]
    return "\n".join(
        [
            f"certificate: {figures['certificate_bytes']} bytes; median of {figures['runs']} runs",
            "with the card timing model (10 ms/APDU, 424 kbit/s, 350 ms signature):",
            f"  probe          {p['apdus']:3d} APDUs  {p['seconds'] * 1000:8.1f} ms",
            f"  PIN-and-sign   {f['apdus']:3d} APDUs  {f['seconds'] * 1000:8.1f} ms"
            f"  (budget {f['apdu_budget']} APDUs)",
            "the PC/SC stack alone (card answers at once):",
            f"  probe          {sp['apdus']:3d} APDUs  {sp['seconds'] * 1000:8.2f} ms",
            f"  PIN-and-sign   {sf['apdus']:3d} APDUs  {sf['seconds'] * 1000:8.2f} ms"
            f"  ({figures['stack_ms_per_apdu']} ms per APDU)",
        ]
    )
