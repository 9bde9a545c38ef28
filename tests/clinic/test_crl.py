"""Revocation lists: refreshed on a schedule, checked for their signer; the grace period."""

from __future__ import annotations

import datetime as dt
import shutil
import time

import pytest
from cryptography.hazmat.primitives import serialization

from clinic.jpki import JpkiTrust, add_months, validity_at
from kiosk.sim.pki import TestJpkiCa, new_rsa_key
from tests.support.clinic import fresh_database, start_clinic, stop_clinic


@pytest.fixture(scope="module")
def crl_clinic(backend, population, tmp_path_factory):
    """A server whose CRL is a file this module rewrites, fetched again every half second."""
    root = tmp_path_factory.mktemp("crl-clinic")
    crl_file = root / "published.crl.pem"
    shutil.copy(population.crl_path, crl_file)
    with fresh_database(backend) as database:
        running = start_clinic(
            backend,
            population,
            root,
            database,
            jpki_crl_sources=(str(crl_file),),
            crl_refresh_s=0.5,
        )
        running.crl_file = crl_file
        try:
            yield running
        finally:
            stop_clinic(running)


def publish(path, ca, serials, *, this_update):
    crl = ca.crl(serials, this_update=this_update, next_update=this_update + dt.timedelta(days=1))
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_newly_revoked_card_is_refused_after_the_next_scheduled_refresh(crl_clinic):
    kiosk = crl_clinic.kiosk()
    card = crl_clinic.population.card("valid-national")
    profile = card.load_profile()
    assert kiosk.check(profile).eligible
    ca = crl_clinic.population.load_ca()
    revoked_before = crl_clinic.population.card("revoked-certificate").certificate_serial
    publish(
        crl_clinic.crl_file,
        ca,
        [int(revoked_before), int(card.certificate_serial)],
        this_update=dt.datetime.now(dt.UTC),
    )
    trust = crl_clinic.context.trust
    assert wait_for(lambda: any(len(s.revoked) == 2 for s in trust.crl_status()))
    result = kiosk.check(profile)
    assert result.reason_code == "certificate.revoked"


def test_a_crl_signed_by_another_ca_is_not_taken(crl_clinic, tmp_path):
    trust = crl_clinic.context.trust
    before = trust.crl_status()
    impostor = TestJpkiCa.create()
    # same issuer name, another key: the signature check must catch it
    publish(crl_clinic.crl_file, impostor, [], this_update=dt.datetime.now(dt.UTC))
    assert wait_for(lambda: trust.last_error is not None)
    assert "signature" in trust.last_error
    assert trust.crl_status() == before
    still_revoked = crl_clinic.kiosk().check(crl_clinic.card("revoked-certificate"))
    assert still_revoked.reason_code == "certificate.revoked"


def test_without_a_current_crl_no_card_passes(population):
    ca_cert = population.load_ca().certificate
    trust = JpkiTrust([ca_cert], [])
    profile = population.card("valid-employee").load_profile()
    certificate = profile.certificate()
    now = dt.datetime.now(dt.UTC)
    assert trust.issuer_of(certificate) == ca_cert
    assert trust.is_revoked(certificate, ca_cert, now) is None


def test_a_crl_long_past_its_next_update_counts_as_missing(population, tmp_path):
    ca = population.load_ca()
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    path = tmp_path / "old.crl.pem"
    publish(path, ca, [], this_update=old)
    trust = JpkiTrust([ca.certificate], [str(path)])
    trust.refresh()
    assert trust.last_error is None
    certificate = population.card("valid-employee").load_profile().certificate()
    assert trust.is_revoked(certificate, ca.certificate, dt.datetime.now(dt.UTC)) is None
    assert trust.is_revoked(certificate, ca.certificate, old + dt.timedelta(hours=1)) is False


def test_an_older_crl_does_not_replace_a_newer_one(population, tmp_path):
    ca = population.load_ca()
    path = tmp_path / "crl.pem"
    now = dt.datetime.now(dt.UTC)
    publish(path, ca, [42], this_update=now)
    trust = JpkiTrust([ca.certificate], [str(path)])
    trust.refresh()
    publish(path, ca, [], this_update=now - dt.timedelta(hours=2))
    trust.refresh()
    assert "older" in (trust.last_error or "")
    assert trust.crl_status()[0].revoked == frozenset({42})


def test_a_missing_crl_file_keeps_the_last_good_list(population, tmp_path):
    ca = population.load_ca()
    path = tmp_path / "crl.pem"
    publish(path, ca, [7], this_update=dt.datetime.now(dt.UTC))
    trust = JpkiTrust([ca.certificate], [str(path)])
    trust.refresh()
    path.unlink()
    trust.refresh()
    assert trust.last_error is not None
    assert trust.crl_status()[0].revoked == frozenset({7})


@pytest.mark.parametrize(
    ("expiry", "now", "expected"),
    [
        ("2026-01-31", "2026-01-31T10:00", "valid"),
        ("2026-01-31", "2026-02-01T10:00", "in_grace"),
        ("2026-01-31", "2026-04-30T10:00", "in_grace"),
        ("2026-01-31", "2026-05-01T10:00", "expired"),
        ("2025-11-30", "2026-02-28T11:00", "in_grace"),
        ("2025-11-30", "2026-03-01T00:00", "expired"),
    ],
)
def test_the_grace_is_three_calendar_months_after_expiry(expected, expiry, now):
    ca = TestJpkiCa.create(now=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    not_after = dt.datetime.fromisoformat(expiry + "T12:00").replace(tzinfo=dt.UTC)
    certificate = ca.issue_user_certificate(
        new_rsa_key().public_key(),
        not_before=not_after - dt.timedelta(days=365),
        not_after=not_after,
    )
    moment = dt.datetime.fromisoformat(now).replace(tzinfo=dt.UTC)
    assert validity_at(certificate, moment) == expected


def test_add_months_clamps_to_the_end_of_a_short_month():
    start = dt.datetime(2025, 11, 30, 12, tzinfo=dt.UTC)
    assert add_months(start, 3) == dt.datetime(2026, 2, 28, 12, tzinfo=dt.UTC)
    assert add_months(dt.datetime(2026, 10, 15, tzinfo=dt.UTC), 3).year == 2027


def test_a_crl_can_come_from_a_url(population, tmp_path):
    import functools
    import http.server
    import threading

    ca = population.load_ca()
    publish(tmp_path / "ca.crl", ca, [99], this_update=dt.datetime.now(dt.UTC))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        serving = threading.Thread(target=httpd.serve_forever)
        serving.start()
        try:
            url = f"http://127.0.0.1:{httpd.server_address[1]}/ca.crl"
            trust = JpkiTrust([ca.certificate], [url])
            trust.refresh()
        finally:
            httpd.shutdown()
            serving.join()
    assert trust.last_error is None
    assert trust.crl_status()[0].revoked == frozenset({99})
    assert trust.crl_status()[0].source == url
