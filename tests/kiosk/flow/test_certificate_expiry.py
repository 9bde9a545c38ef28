"""The user certificate's expiry on the result screen: read from its notAfter, shown from three
months before to three months after, carried through the check to the result."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from kiosk.flow.certificate import WINDOW_DAYS, expiry_of
from kiosk.flow.effects import ShowScreen
from kiosk.flow.events import Answer, CardFacts, CertificateDates, PinAccepted, Pressed
from kiosk.flow.screens import CertificateExpiry, ScreenId, UiAction
from kiosk.flow.states import Checking, ResultOk, VisualCheckWait
from tests.support.machine import ELIGIBLE, VID, Driver

TODAY = date(2026, 12, 1)


def certificate(not_after: datetime) -> bytes:
    """A user certificate as the card holds one, for its dates (made here, key and all)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - timedelta(days=5 * 365))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(Encoding.DER)


def at_noon_jst(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 3, tzinfo=UTC)


def test_the_expiry_is_told_three_months_either_side() -> None:
    soon = TODAY + timedelta(days=30)
    assert expiry_of(certificate(at_noon_jst(soon)), TODAY) == CertificateExpiry(soon, False)
    past = TODAY - timedelta(days=10)
    assert expiry_of(certificate(at_noon_jst(past)), TODAY) == CertificateExpiry(past, True)
    for days in (WINDOW_DAYS + 1, -(WINDOW_DAYS + 1), 4 * 365):
        assert expiry_of(certificate(at_noon_jst(TODAY + timedelta(days=days))), TODAY) is None
    edge = TODAY + timedelta(days=WINDOW_DAYS)
    assert expiry_of(certificate(at_noon_jst(edge)), TODAY) == CertificateExpiry(edge, False)


def test_the_day_is_the_day_in_japan() -> None:
    # 20:00 UTC on 30 November is 05:00 on 1 December in Japan
    late = datetime(2026, 11, 30, 20, tzinfo=UTC)
    assert expiry_of(certificate(late), TODAY) == CertificateExpiry(TODAY, False)


def test_an_unreadable_certificate_shows_nothing() -> None:
    assert expiry_of(b"\x30\x03not a certificate", TODAY) is None


def test_the_expiry_reaches_the_result_screen() -> None:
    driver = Driver()
    driver.read()
    driver.digits(4)
    driver.send(PinAccepted(driver.state.session))
    expiry = CertificateExpiry(TODAY + timedelta(days=20), False)
    driver.send(CertificateDates(driver.state.session, expiry))
    driver.answer(ELIGIBLE)
    assert isinstance(driver.state, ResultOk)
    assert driver.state.certificate_expiry == expiry
    shown = driver.of_type(ShowScreen)[-1].screen
    assert shown.id is ScreenId.RESULT_OK
    assert shown.certificate_expiry == expiry


def test_the_expiry_survives_the_visual_check_and_an_old_card_is_ignored() -> None:
    driver = Driver()
    driver.read(CardFacts("mynumber_card", 0, True))  # a locked PIN: the visual check only
    driver.send(Pressed(UiAction.CHOOSE_VISUAL))
    assert isinstance(driver.state, Checking)
    session = driver.state.session
    driver.send(CertificateDates(session - 1, CertificateExpiry(TODAY, False)))
    assert driver.state.certificate_expiry is None
    expiry = CertificateExpiry(TODAY - timedelta(days=3), True)
    driver.send(CertificateDates(session, expiry))
    driver.answer(Answer(VID, True, "wait_staff", "visual.awaiting_staff"))
    assert isinstance(driver.state, VisualCheckWait)
    assert driver.state.certificate_expiry == expiry
    driver.answer(ELIGIBLE)
    assert isinstance(driver.state, ResultOk)
    assert driver.state.certificate_expiry == expiry
