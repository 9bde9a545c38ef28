"""``kiosk bench card --card-on-reader``: a maintainer's probe of the card on a real reader.

The virtual card stands in for the card on the counter's reader: it is inserted on vpcd by the
test, not by the benchmark, exactly as a card placed on a USB reader appears to pcscd.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from kiosk.bench import card
from kiosk.card.pcsc import PcscContext
from kiosk.cli import main
from kiosk.errors import NoCard
from kiosk.sim.card import VirtualJpkiCard
from kiosk.sim.profile import CardKind, CardProfile
from kiosk.sim.vpcd import inserted

pytestmark = pytest.mark.pcsc


def test_probing_the_card_on_the_reader_spends_no_try_and_reports_per_apdu_cost(
    pcscd: str,
    card_profile_factory: Callable[..., CardProfile],
    capsys: pytest.CaptureFixture[str],
) -> None:
    profile = card_profile_factory(CardKind.MYNUMBER, pin_tries_left=2)
    assert profile.path is not None
    with inserted(VirtualJpkiCard(profile)):
        code = main(
            ["bench", "card", "--card-on-reader", "--reader", pcscd, "--runs", "2", "--json"]
        )
    assert code == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["reader"] == pcscd
    assert figures["token"] == "mynumber_card"
    assert figures["pin_tries_left"] == 2
    assert figures["probe"]["apdus"] >= 5
    assert figures["ms_per_apdu"] > 0
    assert CardProfile.load(profile.path).pin_tries_left == 2  # the probe spent nothing


def test_an_empty_reader_is_a_clear_error_not_a_hang(
    pcscd: str,
) -> None:
    with PcscContext() as context:  # a card lifted by an earlier test may still be leaving
        deadline = time.monotonic() + 5.0
        while context.card_present(pcscd):
            assert time.monotonic() < deadline, "the reader did not empty"
            time.sleep(0.01)
    with pytest.raises(NoCard, match="no card appeared on"):
        card.run_on_reader(runs=1, reader=pcscd, wait_s=0.3)
