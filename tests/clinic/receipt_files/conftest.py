"""A running clinic server that writes result files into a folder of the test's own."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from kiosk.sim.population import Population
from tests.support.clinic import Clinic, fresh_database, start_clinic, stop_clinic

CODE = "1312345678"


@pytest.fixture(scope="module", params=[("sqlite", "cp932"), ("postgresql", "utf-8")])
def receipt_clinic(
    request: pytest.FixtureRequest,
    population: Population,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Clinic]:
    """A server on one back-end writing one encoding (both back-ends, both encodings)."""
    backend, encoding = request.param
    root = tmp_path_factory.mktemp("receipts")
    folder = root / "oqs"
    folder.mkdir()
    with fresh_database(backend) as database:
        running = start_clinic(
            backend,
            population,
            root,
            database,
            receipt_folder=str(folder),
            receipt_encoding=encoding,
            medical_institution_code=CODE,
        )
        try:
            yield running
        finally:
            stop_clinic(running)


@pytest.fixture
def receipt_staff(receipt_clinic: Clinic) -> Iterator[httpx.Client]:
    with receipt_clinic.staff_client() as client:
        assert receipt_clinic.login(client).status_code == 303
        yield client


def folder_of(clinic: Clinic) -> Path:
    folder = clinic.config.receipt_settings.folder
    assert folder is not None
    return folder


def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
