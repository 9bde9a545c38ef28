"""Everything the kiosk can tell a patient that is not plain progress, with a stable number.

Peers show numbered codes with advice (docs/background.md); ours are at least as clear. The
number is what staff and the maintainer quote; the text comes from the message catalogues
(``notice.<name>.title`` and ``notice.<name>.advice`` in every language). ``needs_staff``
notices light amber and call someone; the others light red. ``card_unusable`` notices say the
card cannot be used for the check at all (certificate refused, not a My Number card): the
flow shows them on the ERROR screen even when someone at the desk takes over (the amber
light still calls staff); the other staff notices go on the NEEDS_STAFF screen.

The clinic server answers with a *patient message code* (``eligible``, ``see_staff.revoked``,
...): :data:`BY_PATIENT_MESSAGE` turns it into a notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class NoticeInfo:
    number: int
    #: amber (someone at the desk takes over) rather than red (the card cannot be used)
    needs_staff: bool
    #: the card cannot be used for the check at all (the ERROR screen, route "error")
    card_unusable: bool = False


class Notice(Enum):
    """A numbered message; ``value`` is its :class:`NoticeInfo`."""

    # 1xx: the card
    CARD_UNREADABLE = NoticeInfo(101, needs_staff=True)
    NOT_MY_NUMBER_CARD = NoticeInfo(102, needs_staff=False, card_unusable=True)
    CARD_REMOVED_EARLY = NoticeInfo(103, needs_staff=False)
    PIN_LOCKED = NoticeInfo(111, needs_staff=True)
    PIN_AT_FLOOR = NoticeInfo(112, needs_staff=True)
    NO_PIN = NoticeInfo(113, needs_staff=True)
    # 2xx: the check said no
    REVOKED = NoticeInfo(201, needs_staff=True, card_unusable=True)
    EXPIRED = NoticeInfo(202, needs_staff=True, card_unusable=True)
    CARD_NOT_ACCEPTED = NoticeInfo(203, needs_staff=True, card_unusable=True)
    SIGNATURE = NoticeInfo(204, needs_staff=True, card_unusable=True)
    INVALID = NoticeInfo(211, needs_staff=True)
    NEWER_QUALIFICATION = NoticeInfo(212, needs_staff=True)
    NOT_FOUND = NoticeInfo(213, needs_staff=True)
    MULTIPLE = NoticeInfo(214, needs_staff=True)
    VISUAL_REJECTED = NoticeInfo(215, needs_staff=True)
    # 3xx: the system
    SYSTEM_DOWN = NoticeInfo(301, needs_staff=True)
    SERVER_UNREACHABLE = NoticeInfo(302, needs_staff=True)
    READER_MISSING = NoticeInfo(303, needs_staff=True)
    SERVER_ERROR = NoticeInfo(304, needs_staff=True)
    # 4xx: the patient asked for help
    NO_CARD = NoticeInfo(401, needs_staff=True)

    @property
    def number(self) -> int:
        return self.value.number

    @property
    def needs_staff(self) -> bool:
        return self.value.needs_staff

    @property
    def card_unusable(self) -> bool:
        return self.value.card_unusable

    @property
    def key(self) -> str:
        """The catalogue key stem: ``notice.<lower-case name>``."""
        return f"notice.{self.name.lower()}"

    @property
    def code(self) -> str:
        """What the screen prints next to the message, e.g. ``K-201``."""
        return f"K-{self.number}"


#: The clinic server's patient message codes (``retry`` and ``eligible*`` are not notices).
BY_PATIENT_MESSAGE: dict[str, Notice] = {
    "see_staff.card_unreadable": Notice.CARD_UNREADABLE,
    "see_staff.signature": Notice.SIGNATURE,
    "see_staff.card_not_accepted": Notice.CARD_NOT_ACCEPTED,
    "see_staff.revoked": Notice.REVOKED,
    "see_staff.system_down": Notice.SYSTEM_DOWN,
    "see_staff.expired": Notice.EXPIRED,
    "see_staff.rejected": Notice.VISUAL_REJECTED,
    "see_staff.invalid": Notice.INVALID,
    "see_staff.newer_qualification": Notice.NEWER_QUALIFICATION,
    "see_staff.not_found": Notice.NOT_FOUND,
    "see_staff.multiple": Notice.MULTIPLE,
}
