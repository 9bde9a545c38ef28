"""The simulated national system: answers from loaded records, revocations, outages."""

from __future__ import annotations

import random
import time

import pytest

from clinic.errors import NationalUnavailable
from clinic.national.simulated import (
    InsuredEntry,
    OutagePlan,
    SimulatedNationalSystem,
    list_insured,
    load_insured,
    revoke_insured,
)
from clinic.schema import CLINIC_SCHEMA
from clinic.storage import Database
from tests.support.clinic import fresh_database

ISSUER = "CN=Test JPKI,O=JPKI,C=JP"
RECORD = {"InsurerNumber": "06139999", "InsuredPartialContributionRatio": "030"}


@pytest.fixture
def db(backend, tmp_path):
    with fresh_database(backend) as url:
        database = Database.open(url or f"sqlite://{tmp_path / 'test.db'}")
        try:
            database.migrate([CLINIC_SCHEMA])
            load_insured(
                database,
                iter([InsuredEntry("card-1", ISSUER, 1001, 1, (RECORD,))]),
                now=time.time(),
            )
            yield database
        finally:
            database.close()


def test_it_answers_from_the_loaded_records(db):
    national = SimulatedNationalSystem(db)
    answer = national.lookup(ISSUER, 1001)
    assert (answer.validity_code, answer.records, answer.revoked) == (1, (RECORD,), False)
    assert national.lookup(ISSUER, 9999).validity_code == 4
    assert [r["card_id"] for r in list_insured(db)] == ["card-1"]


def test_a_certificate_revoked_on_the_national_side_is_refused(db):
    assert revoke_insured(db, now=time.time(), card_id="card-1") == 1
    answer = SimulatedNationalSystem(db).lookup(ISSUER, 1001)
    assert (answer.validity_code, answer.revoked) == (4, True)


def test_outages_make_it_unavailable(db):
    with pytest.raises(NationalUnavailable):
        SimulatedNationalSystem(db, OutagePlan(down=True)).lookup(ISSUER, 1001)
    flaky = SimulatedNationalSystem(db, OutagePlan(failure_rate=1.0, rng=random.Random(1)))
    with pytest.raises(NationalUnavailable):
        flaky.lookup(ISSUER, 1001)


def test_simulated_latency_sleeps_and_makes_it_blocking(db):
    slept: list[float] = []
    slow = SimulatedNationalSystem(db, OutagePlan(latency_s=0.25), sleep=slept.append)
    assert slow.lookup(ISSUER, 1001).validity_code == 1
    assert slept == [0.25]
    assert slow.blocking
