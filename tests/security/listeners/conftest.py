"""``clinic-server serve`` itself, as a clinic runs it: the dashboard in its own process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testbed.bench.listener_flood import ServedClinic, start_served_clinic


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedClinic]:
    clinic = start_served_clinic(tmp_path_factory.mktemp("served"))
    try:
        yield clinic
    finally:
        clinic.stop()
