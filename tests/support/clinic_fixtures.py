"""Fixtures of the tests that run the clinic server (``tests/clinic``, ``tests/security``),
registered for the whole suite by ``tests/conftest.py``.

Every fixture that runs the server is parametrized over the storage back-ends, so those suites
run on SQLite and on PostgreSQL. PostgreSQL comes from ``tests/services/postgres.sh``
(``make services``); without it those tests fail and say so. A test module that needs other
settings says so in ``CLINIC_SETTINGS`` (a dict of ``ServerConfig`` fields).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kiosk.sim.population import Population, generate_population
from tests.support.clinic import BACKENDS, Clinic, fresh_database, start_clinic, stop_clinic


@pytest.fixture(scope="session")
def population(tmp_path_factory: pytest.TempPathFactory) -> Population:
    """Every outcome of the simulated population, once per session (the real generator)."""
    return generate_population(tmp_path_factory.mktemp("population"), 20, seed=20261124)


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def clinic(
    request: pytest.FixtureRequest,
    backend: str,
    population: Population,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Clinic]:
    """A running server (both listeners) for the module, on the back-end of this run, with
    the module's ``CLINIC_SETTINGS``."""
    settings = getattr(request.module, "CLINIC_SETTINGS", {})
    with fresh_database(backend) as database:
        running = start_clinic(
            backend, population, tmp_path_factory.mktemp("clinic"), database, **settings
        )
        try:
            yield running
        finally:
            stop_clinic(running)
