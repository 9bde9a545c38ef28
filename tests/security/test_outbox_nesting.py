"""Smaller finding: about 2,000 levels of nested JSON to ``/api/v1/outbox/batch`` gave a 500.

The JSON parser gives up deep nesting with a ``RecursionError``, which escaped as an internal
error. The batch endpoint now answers 422 with a body that says why; the other kiosk routes
(parsed by the framework) answer 4xx too. A real server on loopback, SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kiosk.sim.population import Population
from tests.support.clinic import Clinic, start_clinic, stop_clinic

DEPTH = 2000


@pytest.fixture(scope="module")
def clinic(population: Population, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clinic]:
    running = start_clinic("sqlite", population, tmp_path_factory.mktemp("nesting"), None)
    try:
        yield running
    finally:
        stop_clinic(running)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    "body",
    [
        nested(DEPTH),
        b'{"device_id": "kiosk-1", "records": ' + nested(DEPTH) + b"}",
        b'{"device_id": "kiosk-1", "backlog": {"records": ' + nested(DEPTH) + b'}, "records": []}',
    ],
    ids=["top", "records", "backlog"],
)
def test_deeply_nested_batches_are_refused_as_malformed(clinic, body):
    kiosk = clinic.kiosk("kiosk-1")
    answer = kiosk.http.post(
        "/api/v1/outbox/batch", content=body, headers={"Content-Type": "application/json"}
    )
    print(f"\n{len(body)} bytes, {DEPTH} levels: HTTP {answer.status_code} {answer.text}")
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/json"
    assert "nested too deeply" in answer.json()["detail"]
    # the server goes on as before
    assert kiosk.http.post("/api/v1/challenges").status_code == 201


@pytest.mark.parametrize(
    "path", ["/api/v1/verifications", "/api/v1/heartbeat", "/api/v1/challenges"]
)
def test_other_kiosk_routes_refuse_deep_nesting_without_an_internal_error(clinic, path):
    kiosk = clinic.kiosk("kiosk-1")
    answer = kiosk.http.post(
        path, content=nested(DEPTH), headers={"Content-Type": "application/json"}
    )
    assert answer.status_code < 500, answer.text
