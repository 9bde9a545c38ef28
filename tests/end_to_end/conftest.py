"""End to end: pcscd with the vpcd reader, virtual cards, the real clinic server over TLS on
127.0.0.1 (one per session), and the kiosk built by its composition root from a TOML file.

pcscd is required: the ``pcscd`` fixture fails (never skips) without it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.environment import Environment, environment
from tests.support.kiosk_under_test import KioskUnderTest


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, pcscd: str) -> Iterator[Environment]:
    """The population and the clinic server serving it, for the e2e tests (one server)."""
    with environment(tmp_path_factory.mktemp("e2e"), seed=20261201) as running:
        yield running


@pytest.fixture(scope="module")
def kiosk(env: Environment, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KioskUnderTest]:
    """One kiosk for the e2e tests, on the vpcd reader, short timeouts; it stops when the
    e2e tests are done, so it never touches the cards of the tests that follow."""
    under_test = KioskUnderTest(env, tmp_path_factory.mktemp("kiosk")).start()
    try:
        yield under_test
    finally:
        under_test.stop()


@pytest.fixture
def fresh_kiosk(env: Environment, tmp_path: Path) -> Iterator[KioskUnderTest]:
    """A kiosk of the test's own (made by calling it with options), stopped after the test."""
    made: list[KioskUnderTest] = []

    def make(**options: object) -> KioskUnderTest:
        folder = tmp_path / f"kiosk{len(made)}"
        under_test = KioskUnderTest(env, folder, real_display=False, **options)  # type: ignore[arg-type]
        made.append(under_test)
        return under_test.start()

    yield make  # type: ignore[misc]
    for under_test in made:
        under_test.stop()


def pytest_report_header() -> str:
    return "e2e: pcscd + vpcd reader 0, clinic server on 127.0.0.1 (" + json.dumps("TLS") + ")"
