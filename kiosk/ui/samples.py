"""Representative screens: every screen id with each kind of fact it can carry.

Used by the screenshot tests, by the catalogue test (the keys these screens use are the keys
every catalogue must have) and by ``kiosk voice build`` (through the prompts they need).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from kiosk.flow.notices import Notice
from kiosk.flow.screens import CertificateExpiry, Language, PinUnavailable, Screen, ScreenId
from kiosk.ui.view import MAX_REMINDER, PIN_LENGTH

#: What staff mode shows, as the flow would fill it (no patient data).
STAFF_LINES = (
    "Reader: SONY FeliCa RC-S300/P (ready)",
    "Clinic server: reachable, 12 ms",
    "Outbox: 0 waiting, last upload 10:42",
    "Version 0.1.0",
)


def sample_screens(language: Language = Language.JA) -> list[Screen]:
    """One screen per distinct look, in ``language``."""

    def s(screen_id: ScreenId, **facts: Any) -> Screen:
        return Screen(screen_id, language, **facts)

    screens = [
        s(ScreenId.IDLE),
        s(ScreenId.LANGUAGES),
        s(ScreenId.NO_CARD_HELP),
        s(ScreenId.READING),
        s(ScreenId.CHOOSE_CHECK, tries_left=3),
        s(ScreenId.CHOOSE_CHECK),
        s(ScreenId.CHOOSE_CHECK, pin_unavailable=PinUnavailable.LOCKED, tries_left=0),
        s(ScreenId.CHOOSE_CHECK, pin_unavailable=PinUnavailable.AT_FLOOR, tries_left=1),
        s(ScreenId.CHOOSE_CHECK, pin_unavailable=PinUnavailable.AT_FLOOR, tries_left=2),
        s(ScreenId.CHOOSE_CHECK, pin_unavailable=PinUnavailable.NO_PIN),
        s(ScreenId.PIN_ENTRY, tries_left=3),
        s(ScreenId.PIN_ENTRY, tries_left=3, digits_typed=2),
        s(ScreenId.PIN_ENTRY, tries_left=2, wrong_pin=True),
        s(ScreenId.PIN_ENTRY, tries_left=1, wrong_pin=True, digits_typed=PIN_LENGTH - 1),
        s(ScreenId.PIN_ENTRY, wrong_pin=True),
        s(ScreenId.PIN_ENTRY),
        s(ScreenId.CHECKING),
        s(ScreenId.VISUAL_WAIT),
        s(ScreenId.RESULT_OK),
        s(ScreenId.RESULT_OK, renew_certificate=True),
        s(ScreenId.RESULT_OK, copay_percent=30),
        s(
            ScreenId.RESULT_OK,
            copay_percent=10,
            certificate_expiry=CertificateExpiry(date(2027, 3, 31), False),
        ),
        s(ScreenId.RESULT_OK, certificate_expiry=CertificateExpiry(date(2027, 3, 31), False)),
        s(
            ScreenId.RESULT_OK,
            renew_certificate=True,
            certificate_expiry=CertificateExpiry(date(2026, 11, 30), True),
        ),
    ]
    for notice in Notice:
        screens.append(s(ScreenId.NEEDS_STAFF, notice=notice))
        screens.append(s(ScreenId.ERROR, notice=notice))
    screens += [s(ScreenId.NEEDS_STAFF), s(ScreenId.ERROR)]
    screens += [s(ScreenId.TAKE_CARD, reminder_level=level) for level in range(MAX_REMINDER + 1)]
    screens += [
        s(ScreenId.REMOVED_EARLY),
        s(ScreenId.REMOVED_EARLY, notice=Notice.CARD_REMOVED_EARLY),
        s(ScreenId.READER_MISSING),
        s(ScreenId.READER_MISSING, notice=Notice.READER_MISSING),
        s(ScreenId.SERVER_UNREACHABLE),
        s(ScreenId.SERVER_UNREACHABLE, notice=Notice.SERVER_UNREACHABLE),
        s(ScreenId.SERVER_UNREACHABLE, notice=Notice.SYSTEM_DOWN),
        s(ScreenId.STAFF_MODE, staff_lines=STAFF_LINES),
    ]
    return screens


def sample_name(screen: Screen) -> str:
    """A file-name-safe name for a sample screen, unique within :func:`sample_screens`."""
    parts = [screen.id.value]
    if screen.notice is not None:
        parts.append(screen.notice.name.lower())
    if screen.pin_unavailable is not None:
        parts.append(screen.pin_unavailable.value)
    if screen.tries_left is not None:
        parts.append(f"tries{screen.tries_left}")
    if screen.digits_typed:
        parts.append(f"typed{screen.digits_typed}")
    if screen.wrong_pin:
        parts.append("wrong")
    if screen.renew_certificate:
        parts.append("renew")
    if screen.certificate_expiry is not None:
        parts.append("expired" if screen.certificate_expiry.expired else "expires")
    if screen.copay_percent is not None:
        parts.append(f"copay{screen.copay_percent}")
    if screen.id is ScreenId.TAKE_CARD:
        parts.append(f"level{screen.reminder_level}")
    return "-".join(parts)
