"""Fixtures for the dashboard's tests (the server itself comes from ``tests/clinic``)."""

from __future__ import annotations

import pytest


@pytest.fixture
def staff(clinic):
    """A logged-in administrator's HTTPS client."""
    with clinic.staff_client() as client:
        answer = clinic.login(client)
        assert answer.status_code == 303
        yield client
