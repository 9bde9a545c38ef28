"""Revocation lists shared through the database: what one instance fetched and checked, every
instance puts in force (clinic.crl_store)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil

import pytest
from cryptography.hazmat.primitives import serialization

from clinic import crl_store
from clinic.crl_store import CRL_SCHEMA, CrlStore, StoredCrl, issuer_key
from clinic.jpki import JpkiTrust
from clinic.server import ClinicServer, ServerThread, build_context
from clinic.storage import Database
from kiosk.sim.pki import TestJpkiCa
from tests.clinic.test_crl import publish, wait_for
from tests.support.clinic import Clinic, fresh_database, start_clinic, stop_clinic


@pytest.fixture
def store(tmp_path):
    db = Database.open(f"sqlite://{tmp_path / 'crls.db'}")
    db.migrate([CRL_SCHEMA])
    try:
        yield CrlStore(db)
    finally:
        db.close()


def shared_trust(ca, sources, store):
    trust = JpkiTrust([ca.certificate], [str(s) for s in sources])
    trust.share_through(store)
    return trust


def test_an_instance_whose_source_is_down_takes_the_crl_another_instance_fetched(
    population, tmp_path, store
):
    ca = population.load_ca()
    published = tmp_path / "published.crl.pem"
    publish(published, ca, [42], this_update=dt.datetime.now(dt.UTC))
    a = shared_trust(ca, [published], store)
    a.refresh()
    b = shared_trust(ca, [tmp_path / "unreachable.crl.pem"], store)
    b.refresh()
    assert b.last_error is not None, "B's own source failed"
    assert [s.revoked for s in b.crl_status()] == [frozenset({42})]
    certificate = population.card("valid-employee").load_profile().certificate()
    assert b.is_revoked(certificate, ca.certificate, dt.datetime.now(dt.UTC)) is False


def test_only_a_newer_crl_replaces_the_stored_one(population, tmp_path, store):
    ca = population.load_ca()
    now = dt.datetime.now(dt.UTC)
    path = tmp_path / "crl.pem"
    publish(path, ca, [1, 2], this_update=now)
    shared_trust(ca, [path], store).refresh()
    publish(path, ca, [], this_update=now - dt.timedelta(hours=2))
    shared_trust(ca, [path], store).refresh()  # an instance with an older copy
    (stored,) = store.newer_than({})
    assert stored.this_update == pytest.approx(now.timestamp(), abs=1)
    fresh = shared_trust(ca, [], store)
    fresh.load_shared()
    assert [s.revoked for s in fresh.crl_status()] == [frozenset({1, 2})]


def test_a_stored_crl_is_checked_again_before_it_is_put_in_force(population, tmp_path, store):
    ca = population.load_ca()
    now = dt.datetime.now(dt.UTC)
    path = tmp_path / "crl.pem"
    publish(path, ca, [5], this_update=now - dt.timedelta(minutes=5))
    b = shared_trust(ca, [path], store)
    b.refresh()
    # a row written straight into the database, signed by another key under the CA's name
    impostor = TestJpkiCa.create()
    forged = impostor.crl([], this_update=now, next_update=now + dt.timedelta(days=1))
    store.save(
        StoredCrl(
            issuer_key(ca.certificate.subject.public_bytes()),
            now.timestamp(),
            forged.public_bytes(serialization.Encoding.DER),
            "forged",
        ),
        now=now.timestamp(),
    )
    b.load_shared()
    assert [s.revoked for s in b.crl_status()] == [frozenset({5})], "the forged list is refused"


def test_a_card_revoked_in_a_crl_instance_a_fetched_is_refused_at_instance_b(
    population, tmp_path_factory, monkeypatch
):
    """Two instances on one PostgreSQL database: B's own CRL source cannot be reached; a card
    revoked in the CRL that A fetches is refused at B within B's next look at the database."""
    root = tmp_path_factory.mktemp("crl-sharing")
    crl_file = root / "published.crl.pem"
    shutil.copy(population.crl_path, crl_file)
    monkeypatch.setattr(crl_store, "SHARED_CHECK_S", 0.5)
    with fresh_database("postgresql") as database:
        a = start_clinic(
            "postgresql",
            population,
            root / "a",
            database,
            jpki_crl_sources=(str(crl_file),),
            crl_refresh_s=0.5,
        )
        try:
            config = dataclasses.replace(
                a.config,
                jpki_crl_sources=(str(root / "unreachable.crl.pem"),),
                crl_refresh_s=3600.0,
            )
            context = build_context(config, clock=a.clock)
            assert context.trust.last_error is not None, "B's own source is down"
            assert context.trust.crl_status(), "B starts with the CRL A stored"
            server = ClinicServer(config, context)
            (root / "b").mkdir()
            b = Clinic(
                "postgresql",
                config,
                context,
                server,
                ServerThread(server).start(),
                a.clock,
                population,
                root / "b",
                a.admin,
                a.admin_password,
            )
            try:
                kiosk = b.kiosk("kiosk-at-b")
                card = population.card("valid-national")
                profile = card.load_profile()
                assert kiosk.check(profile).eligible
                revoked_before = population.card("revoked-certificate").certificate_serial
                publish(
                    crl_file,
                    population.load_ca(),
                    [int(revoked_before), int(card.certificate_serial)],
                    this_update=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1),
                )
                assert wait_for(
                    lambda: any(len(s.revoked) == 2 for s in context.trust.crl_status()),
                    timeout=10.0,
                ), "B took the CRL A fetched"
                assert kiosk.check(profile).reason_code == "certificate.revoked"
            finally:
                stop_clinic(b)
        finally:
            stop_clinic(a)
