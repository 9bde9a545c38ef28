"""The numbered notices the kiosk shows a patient, one table for the kiosk and the dashboard.

Peers show numbered codes with advice (docs/background.md); ours are at least as clear. The
number is what staff and the maintainer quote; the kiosk's text comes from its message
catalogues (``notice.<name>.title`` and ``notice.<name>.advice`` in every language). For the
staff desk each notice also carries, in Japanese and English, what the patient saw (the
Japanese title is the kiosk's own, a test keeps them equal) and what staff do: the
dashboard's notice-code page lists them all.

``needs_staff`` notices light amber and call someone; the others light red. ``card_unusable``
notices say the card cannot be used for the check at all (certificate refused, not a My
Number card): the flow shows them on the ERROR screen even when someone at the desk takes
over (the amber light still calls staff); the other staff notices go on the NEEDS_STAFF
screen.

The clinic server answers with a *patient message code* (``eligible``, ``see_staff.revoked``,
...): :data:`BY_PATIENT_MESSAGE` turns it into a notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final, Literal, get_args


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

    @classmethod
    def by_number(cls, number: int) -> Notice:
        """The notice with this number; ``ValueError`` for a number the kiosk never shows."""
        for notice in cls:
            if notice.number == number:
                return notice
        raise ValueError(f"no notice K-{number}")


@dataclass(frozen=True)
class StaffGuide:
    """What the desk needs to know of one notice, in Japanese and English."""

    #: the patient's screen title (Japanese: the kiosk's own words)
    patient_saw_ja: str
    patient_saw_en: str
    #: what staff do
    staff_do_ja: str
    staff_do_en: str


_DESK = "受付で"
_ALT = "資格確認書、または資格情報のお知らせ・マイナポータルの画面とカードで資格を確認する。"
_ALT_EN = (
    "Check eligibility with the 資格確認書, or the card with 資格情報のお知らせ or the "
    "マイナポータル screen."
)

#: Every notice's guide for the staff desk (the dashboard's notice-code page).
STAFF_GUIDE: dict[Notice, StaffGuide] = {
    Notice.CARD_UNREADABLE: StaffGuide(
        "カードを読み取れませんでした",
        "The card could not be read",
        "カードの汚れ・割れを確認し、もう一度置いてもらう。だめなら" + _ALT,
        "Look for dirt or cracks and let the patient try again; otherwise: " + _ALT_EN,
    ),
    Notice.NOT_MY_NUMBER_CARD: StaffGuide(
        "マイナンバーカードではありません",
        "This is not a My Number card",
        "置かれたカードを確認する。資格確認書があれば" + _DESK + "確認する。",
        "See which card was placed; take the 資格確認書 at the desk if the patient has one.",
    ),
    Notice.CARD_REMOVED_EARLY: StaffGuide(
        "カードが途中で離れました",
        "The card was lifted too early",
        "対応不要。患者がもう一度カードを置く。続く場合はカードを置く位置を案内する。",
        "Nothing to do; the patient places the card again. If it repeats, show where to put it.",
    ),
    Notice.PIN_LOCKED: StaffGuide(
        "暗証番号がロックされています",
        "The PIN is locked",
        "顔写真で本人確認する（目視確認）。ロック解除は市区町村の窓口のみと伝える。",
        "Compare the card photo with the patient (visual check); only the city office unlocks.",
    ),
    Notice.PIN_AT_FLOOR: StaffGuide(
        "暗証番号の残り回数がわずかです",
        "Few PIN tries are left",
        "顔写真で本人確認する（目視確認）。残り1回はロック防止のため使わないと伝える。",
        "Do the visual check; the last try is kept so the card does not lock.",
    ),
    Notice.NO_PIN: StaffGuide(
        "暗証番号のないカードです",
        "A card without a PIN",
        "顔認証マイナンバーカード、またはPINを出せないスマートフォン。顔写真で本人確認する。",
        "A 顔認証カード or a phone that cannot give a PIN: do the visual check.",
    ),
    Notice.REVOKED: StaffGuide(
        "カードの電子証明書が失効しています",
        "The card's certificate is revoked",
        _ALT + "市区町村の窓口で再発行を受けるよう伝える。",
        _ALT_EN + " Send the patient to the city office for a new certificate.",
    ),
    Notice.EXPIRED: StaffGuide(
        "カードの電子証明書の期限が切れています",
        "The card's certificate has expired",
        _ALT + "市区町村の窓口で更新するよう伝える。",
        _ALT_EN + " Send the patient to the city office to renew it.",
    ),
    Notice.CARD_NOT_ACCEPTED: StaffGuide(
        "このカードはここでは使えません",
        "This card cannot be used here",
        "保険証利用登録がない可能性。" + _ALT,
        "Perhaps not registered as a health insurance card. " + _ALT_EN,
    ),
    Notice.SIGNATURE: StaffGuide(
        "カードを確認できませんでした",
        "The card could not be verified",
        _ALT + "続く場合は保守担当に連絡する。",
        _ALT_EN + " If it repeats, tell the maintainer.",
    ),
    Notice.INVALID: StaffGuide(
        "保険の資格が無効となっています",
        "The insurance is no longer valid",
        "保険が変わっていないか聞き、新しい資格確認書などで確認する。",
        "Ask whether the insurance changed; check the new 資格確認書 or similar.",
    ),
    Notice.NEWER_QUALIFICATION: StaffGuide(
        "保険が変わっています",
        "The insurance has changed",
        "詳細画面で新しい資格を確認し、受付の登録を更新する。",
        "See the new qualification on the detail page and update the registration.",
    ),
    Notice.NOT_FOUND: StaffGuide(
        "保険の資格が見つかりませんでした",
        "No insurance record was found",
        "加入・変更したばかりか聞く。" + _ALT,
        "Ask whether the insurance is new or just changed. " + _ALT_EN,
    ),
    Notice.MULTIPLE: StaffGuide(
        "保険の資格が複数見つかりました",
        "Several insurance records were found",
        "詳細画面の資格を患者と確認し、使う保険を決める。",
        "Go through the records on the detail page with the patient and pick the insurance.",
    ),
    Notice.VISUAL_REJECTED: StaffGuide(
        "顔写真による確認ができませんでした",
        "The visual check did not confirm the patient",
        "本人確認書類で確認するか、" + _ALT,
        "Check another identity document, or: " + _ALT_EN,
    ),
    Notice.SYSTEM_DOWN: StaffGuide(
        "ただいま保険の確認ができません",
        "Your insurance cannot be checked now (the national system is down)",
        _ALT + "初めての方は被保険者資格申立書。10割負担にはしない。",
        _ALT_EN + " First visit: 被保険者資格申立書. Never charge in full for this.",
    ),
    Notice.SERVER_UNREACHABLE: StaffGuide(
        "ただいま保険の確認ができません",
        "Your insurance cannot be checked now (the kiosk cannot reach the clinic server)",
        _ALT + "院内ネットワークとサーバーを確認する。10割負担にはしない。",
        _ALT_EN + " Check the clinic network and server. Never charge in full for this.",
    ),
    Notice.READER_MISSING: StaffGuide(
        "カードリーダーが使えません",
        "The card reader is missing",
        "リーダーのケーブルを確認する。その間は" + _ALT,
        "Check the reader's cable. Meanwhile: " + _ALT_EN,
    ),
    Notice.SERVER_ERROR: StaffGuide(
        "確認を完了できませんでした",
        "The check could not be completed",
        "もう一度カードを置いてもらう。続く場合は" + _ALT,
        "Let the patient try once more; if it repeats: " + _ALT_EN,
    ),
    Notice.NO_CARD: StaffGuide(
        "受付にお越しください",
        "Please come to the desk",
        "患者が職員を呼びました。カードがない方は資格確認書などで確認する。",
        "The patient called for staff. Without a card: check the 資格確認書 or similar.",
    ),
}

#: Why a kiosk called staff: the reason of a staff call (``POST /api/v1/staff-calls``).
StaffCallReason = Literal[
    "no_card",  # the patient pressed "no card" (資格確認書 only)
    "patient",  # the patient pressed "call staff"
    "notice",  # a notice that sends the patient to the desk
    "card_left",  # the card stayed on the reader up to the level that says staff were told
    "reader_missing",
    "server_unreachable",
    "visual_check",  # a visual check waits: the card's photo against the patient
    "visual_check.phone",  # the same, for a phone that cannot give a PIN
]
STAFF_CALL_REASONS: Final[tuple[str, ...]] = get_args(StaffCallReason)

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
