"""When a card's user-authentication certificate expires: its notAfter, nothing else.

The kiosk reads the certificate anyway (it goes to the server with the check); the result
screen says when it expires from three months before that day until three months after
(:data:`WINDOW_DAYS`), so the patient renews it at the city office in time. No other field of
the certificate is looked at, and the date is not kept beyond the screen.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone

from cryptography import x509

from kiosk.flow.screens import CertificateExpiry

log = logging.getLogger(__name__)

#: About three months each side of the expiry day.
WINDOW_DAYS = 92
JST = timezone(timedelta(hours=9))


def expiry_of(certificate_der: bytes, today: date) -> CertificateExpiry | None:
    """The certificate's expiry when ``today`` is within :data:`WINDOW_DAYS` of it, else None
    (also when it cannot be parsed: the server judges the certificate, this is only a hint)."""
    try:
        not_after = x509.load_der_x509_certificate(certificate_der).not_valid_after_utc
    except ValueError as exc:
        log.warning("the user certificate's expiry cannot be read: %s", exc)
        return None
    on = not_after.astimezone(JST).date()
    if abs((on - today).days) > WINDOW_DAYS:
        return None
    return CertificateExpiry(on=on, expired=on < today)


def today_in_japan() -> date:
    return datetime.now(JST).date()
