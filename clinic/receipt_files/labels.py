"""Words for the record's coded fields, for staff (detail page, Japanese CSV).

The code tables are those public receipt and EMR software uses for the national interface
(docs/receipt-files.md); a code not in a table is shown as the code itself.
"""

from __future__ import annotations

from typing import Any

NONE_JA = "なし"

CODE_LABELS: dict[str, dict[str, str]] = {
    "InsuredCardClassification": {
        "01": "被保険者証（一般）",
        "02": "被保険者証（退職）",
        "03": "短期被保険者証（一般）",
        "04": "短期被保険者証（退職）",
        "05": "被保険者資格証明書",
        "06": "特例退職被保険者証",
        "07": "自衛官診療証",
    },
    "PersonalFamilyClassification": {"1": "本人", "2": "家族"},
    "Sex1": {"1": "男", "2": "女", "3": "未設定"},
    "PreschoolClassification": {"1": "未就学該当"},
    "ReasonOfLoss": {
        "01": "死亡",
        "02": "生活保護受給開始",
        "03": "医療保険等の資格取得",
        "99": "その他",
    },
    "LimitApplicationCertificateClassification": {
        "01": "限度額適用認定証",
        "02": "限度額適用・標準負担額減額認定証",
        "03": "標準負担額減額認定証",
    },
    "LimitApplicationCertificateClassificationFlag": {
        "A01": "ア",
        "A02": "イ",
        "A03": "ウ",
        "A04": "エ",
        "A05": "オ",
        "A06": "オ（境）",
        "B01": "現役並みⅢ",
        "B02": "現役並みⅡ",
        "B03": "現役並みⅠ",
        "B04": "一般",
        "B05": "低所得Ⅱ",
        "B06": "低所得Ⅰ",
        "B07": "低所得Ⅰ（老福）",
        "B08": "低所得Ⅰ（境）",
        "B09": "一般Ⅱ",
        "B10": "一般Ⅰ",
    },
}

#: coded fields whose absence means "not applicable" (shown as なし, not left blank)
ABSENT_IS_NONE = ("PreschoolClassification", "ReasonOfLoss")


def code_label(key: str, value: Any) -> str:
    """``"01"`` of InsuredCardClassification -> ``01 被保険者証（一般）``; unknown codes as
    given; an empty value as なし."""
    if value is None or value == "":
        return NONE_JA
    table = CODE_LABELS.get(key)
    label = table.get(str(value)) if table else None
    return f"{value} {label}" if label else str(value)


def is_coded(key: str) -> bool:
    return key in CODE_LABELS
