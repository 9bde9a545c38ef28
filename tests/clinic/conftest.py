"""Fixtures for the clinic server: a real server on loopback over TLS, kiosks, a population.

Every fixture that runs the server is parametrized over the storage back-ends, so the whole
clinic suite runs on SQLite and on PostgreSQL. PostgreSQL comes from
``tests/services/postgres.sh`` (``make services``); without it those tests fail and say so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from clinic_support import (
    BACKENDS,
    Clinic,
    OffsetClock,
    fresh_database,
    hidden,
    start_clinic,
    stop_clinic,
)

from kiosk.sim.population import Population, generate_population


@pytest.fixture(scope="session")
def population(tmp_path_factory: pytest.TempPathFactory) -> Population:
    """Every outcome of the simulated population, once per session (the real generator)."""
    return generate_population(tmp_path_factory.mktemp("population"), 20, seed=20261124)


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def hidden_field() -> Callable[[str, str], str]:
    return hidden


@pytest.fixture(scope="module")
def clinic(
    backend: str, population: Population, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Clinic]:
    """A running server (both listeners) for the module, on the back-end of this run."""
    with fresh_database(backend) as database:
        running = start_clinic(backend, population, tmp_path_factory.mktemp("clinic"), database)
        try:
            yield running
        finally:
            stop_clinic(running)


@pytest.fixture
def clock(clinic: Clinic) -> Iterator[OffsetClock]:
    """The server's clock; any offset a test sets is undone after it."""
    yield clinic.clock
    clinic.clock.offset = 0.0
