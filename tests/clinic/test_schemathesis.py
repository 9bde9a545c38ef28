"""Schemathesis, from the server's own OpenAPI schema, finds no server error (live, signed)."""

from __future__ import annotations

import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from contract.device_signing import DeviceIdentity

EXAMPLES_PER_OPERATION = 20


class SignedRequests(requests.auth.AuthBase):
    """The device signature of ``contract.device_signing`` for the requests library."""

    def __init__(self, identity: DeviceIdentity) -> None:
        self.identity = identity

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        request.headers.update(
            self.identity.sign_request(
                request.method or "GET", request.path_url, body, now=time.time()
            )
        )
        return request


@pytest.fixture(scope="module")
def signed_session(clinic):
    kiosk = clinic.kiosk("kiosk-fuzz")
    session = requests.Session()
    session.cert = (str(kiosk.cert_path), str(kiosk.key_path))
    session.verify = str(clinic.server_ca)
    session.auth = SignedRequests(kiosk.identity)
    yield session
    session.close()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_generated_request_makes_a_server_error(clinic, signed_session, mode):
    raw = clinic.kiosk("kiosk-fuzz").http.get("/api/v1/openapi.json").json()
    schema = schemathesis.openapi.from_dict(raw)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {
        "/api/v1/challenges",
        "/api/v1/verifications",
        "/api/v1/verifications/{verification_id}",
    }
    tried = 0
    for operation in operations:
        strategy = operation.as_strategy(generation_mode=mode)

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def call(case):
            nonlocal tried
            if case.query and "wait" in case.query:
                case.query["wait"] = 0  # no long-poll holds the run
            response = case.call(
                base_url=clinic.kiosk_url,
                session=signed_session,
                verify=signed_session.verify,
                cert=signed_session.cert,
                timeout=10,
            )
            tried += 1
            assert response.status_code not in (401, 403), response.text
            case.validate_response(response, checks=[not_a_server_error])

        try:
            call()
        except Unsatisfiable:
            # an operation with nothing to get wrong (no body, no parameters) has no
            # negative examples
            assert mode is GenerationMode.NEGATIVE
            assert not operation.body
            assert not operation.query
            assert not operation.path_parameters
    assert tried >= (len(operations) if mode is GenerationMode.POSITIVE else 1)
