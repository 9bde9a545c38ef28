"""Obviously fictional people for a synthetic population: names (with their half-width
katakana reading), birthdays, addresses, and the date arithmetic the records need.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date

from kiosk.redaction import personal_data

# -------------------------------------------------------------------------------

SURNAMES = (
    ("見本", "ミホン"),
    ("試験", "シケン"),
    ("模擬", "モギ"),
    ("架空", "カクウ"),
    ("仮名", "カメイ"),
    ("検証", "ケンショウ"),
    ("試作", "シサク"),
    ("標本", "ヒョウホン"),
)
GIVEN_NAMES = {
    "1": (
        ("太郎", "タロウ"),
        ("一郎", "イチロウ"),
        ("次郎", "ジロウ"),
        ("健太", "ケンタ"),
        ("翔太", "ショウタ"),
        ("大輔", "ダイスケ"),
        ("誠", "マコト"),
        ("蓮", "レン"),
        ("茂", "シゲル"),
        ("清", "キヨシ"),
    ),
    "2": (
        ("花子", "ハナコ"),
        ("桜", "サクラ"),
        ("陽子", "ヨウコ"),
        ("美咲", "ミサキ"),
        ("結衣", "ユイ"),
        ("恵子", "ケイコ"),
        ("葵", "アオイ"),
        ("直美", "ナオミ"),
        ("幸子", "サチコ"),
        ("和子", "カズコ"),
    ),
}


@dataclass(frozen=True)
class Prefecture:
    code: str
    name: str
    branch: str  # the 協会けんぽ branch name
    city: str
    post_prefix: str


PREFECTURES = (
    Prefecture("13", "東京都", "東京", "練馬区", "176"),
    Prefecture("27", "大阪府", "大阪", "大阪市北区", "530"),
    Prefecture("14", "神奈川県", "神奈川", "横浜市中区", "231"),
    Prefecture("23", "愛知県", "愛知", "名古屋市中区", "460"),
    Prefecture("01", "北海道", "北海道", "札幌市中央区", "060"),
    Prefecture("40", "福岡県", "福岡", "福岡市博多区", "812"),
    Prefecture("04", "宮城県", "宮城", "仙台市青葉区", "980"),
    Prefecture("34", "広島県", "広島", "広島市中区", "730"),
)
TOWNS = ("見本町", "試験台", "模擬が丘", "架空野", "仮名坂")
COMPANIES = ("見本商事", "試験工業", "模擬電機", "架空物産")


def _half_width_table() -> dict[str, str]:
    """Full-width katakana to the half-width form the national interface uses for NameKana."""
    table: dict[str, str] = {"　": " ", " ": " "}
    for code in range(0xFF61, 0xFFA0):
        narrow = chr(code)
        for candidate in (narrow + "\uff9e", narrow + "\uff9f", narrow):
            wide = unicodedata.normalize("NFKC", candidate)
            if len(wide) == 1:
                table.setdefault(wide, candidate)
    return table


_HALF_WIDTH = _half_width_table()


def half_width_katakana(text: str) -> str:
    """``ミホン　ハナコ`` -> ``ﾐﾎﾝ ﾊﾅｺ``; KeyError for characters that have no half-width form."""
    return "".join(_HALF_WIDTH[character] for character in text)


def age_on(birthdate: date, today: date) -> int:
    return (
        today.year - birthdate.year - ((today.month, today.day) < (birthdate.month, birthdate.day))
    )


def birthday_in(birthdate: date, year: int) -> date:
    """The birthday in ``year`` (29 February falls on the 28th in common years)."""
    if birthdate.month == 2 and birthdate.day == 29:
        try:
            return date(year, 2, 29)
        except ValueError:
            return date(year, 2, 28)
    return birthdate.replace(year=year)


def fifth_birthday_after(issued: date, birthdate: date) -> date:
    """When a JPKI certificate issued on ``issued`` expires: the holder's fifth birthday after."""
    first = birthday_in(birthdate, issued.year)
    if first <= issued:
        first = birthday_in(birthdate, issued.year + 1)
    return birthday_in(birthdate, first.year + 4)


def check_digit(digits: str) -> str:
    """The 検証番号 of insurer and public-expense numbers: weights 2,1,2,1... from the right,
    the digits of the products summed, then the complement to a multiple of 10."""
    total = 0
    for position, digit in enumerate(reversed(digits)):
        product = int(digit) * (2 if position % 2 == 0 else 1)
        total += product // 10 + product % 10
    return str((10 - total % 10) % 10)


def yyyymmdd(day: date | None) -> str | None:
    return day.strftime("%Y%m%d") if day is not None else None


@personal_data
@dataclass(frozen=True)
class Person:
    name: str
    name_kana: str
    sex: str
    birthdate: date
    address: str
    post_number: str
    prefecture: Prefecture
