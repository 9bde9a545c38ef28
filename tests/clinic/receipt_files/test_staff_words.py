"""Staff-friendly data: words for the coded fields and なし for empty dates on the detail page
and in the Japanese CSV; the certificate's expiry notice on the detail page."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import httpx

from tests.support.clinic import Clinic


def _field(html: str, key: str) -> str:
    match = re.search(rf'data-field="{key}">([^<]*)<', html)
    assert match, key
    return match.group(1)


def test_the_detail_page_labels_coded_fields_and_says_nashi(
    receipt_clinic: Clinic, receipt_staff: httpx.Client
) -> None:
    kiosk = receipt_clinic.kiosk("kiosk-words")
    preschool = kiosk.check(receipt_clinic.card("valid-preschool-public-expense"), "pin")
    html = receipt_staff.get(f"/verifications/{preschool.verification_id}").text
    assert _field(html, "InsuredCardClassification") == "01 被保険者証（一般）"
    assert _field(html, "PreschoolClassification") == "1 未就学該当"
    assert _field(html, "DisqualificationDate") == "なし"
    assert _field(html, "ReasonOfLoss") == "なし"
    disqualified = kiosk.check(receipt_clinic.card("disqualified"), "pin")
    v = receipt_clinic.context.service.get(disqualified.verification_id)
    assert v is not None
    assert v.records
    html = receipt_staff.get(f"/verifications/{v.id}").text
    reason = v.records[0]["ReasonOfLoss"]
    assert _field(html, "ReasonOfLoss") == {"02": "02 生活保護受給開始", "99": "99 その他"}[reason]
    assert _field(html, "DisqualificationDate") != "なし"
    assert _field(html, "InsuredCardExpirationDate") == "なし"
    assert 'id="expiry-notice"' not in html


def test_the_certificate_expiry_is_on_the_detail_page_within_three_months(
    receipt_clinic: Clinic, receipt_staff: httpx.Client
) -> None:
    kiosk = receipt_clinic.kiosk("kiosk-expiry")
    result = kiosk.check(receipt_clinic.card("expired-in-grace"), "pin")
    v = receipt_clinic.context.service.get(result.verification_id)
    assert v is not None
    assert v.cert_not_after is not None
    # the kiosk's answer carries the date for its result screen
    expected = dt.datetime.fromtimestamp(v.cert_not_after, receipt_clinic.context.service.tz)
    assert result.certificate_expires == expected.date().isoformat()
    assert kiosk.check(receipt_clinic.card("valid-employee"), "pin").certificate_expires is None
    html = receipt_staff.get(f"/verifications/{result.verification_id}").text
    notice = re.search(r'id="expiry-notice">\s*<h2>[^<]*</h2>\s*<p>([^<]*)</p>', html)
    assert notice, "the expiry notice"
    assert "日前に期限切れ" in notice.group(1)
    assert "市区町村の窓口" in notice.group(1)


def test_csv_with_japanese_headers_and_words(
    receipt_clinic: Clinic, receipt_staff: httpx.Client
) -> None:
    kiosk = receipt_clinic.kiosk("kiosk-csv")
    elderly = kiosk.check(receipt_clinic.card("valid-elderly-30-limit"), "pin")
    v = receipt_clinic.context.service.get(elderly.verification_id)
    assert v is not None
    assert v.records
    answer = receipt_staff.get(f"/export/{v.day}.csv?headers=ja")
    assert answer.status_code == 200
    assert answer.headers["content-disposition"].endswith('-ja.csv"')
    assert answer.text.startswith("\ufeff")
    reader = csv.reader(io.StringIO(answer.text.lstrip("\ufeff")))
    header = next(reader)
    assert header[:6] == ["確認ID", "確認日時", "キオスク", "本人確認", "結果", "資格有効性"]
    for words in (
        "保険者番号",
        "資格確認書等の種別",
        "未就学区分",
        "資格喪失日",
        "限度額適用認定証 適用区分",
    ):
        assert words in header, words
    assert not any(h.isascii() for h in header[6:]), header
    rows = [dict(zip(header, r, strict=True)) for r in reader]
    (row,) = [r for r in rows if r["確認ID"] == v.id]
    record = v.records[0]
    assert row["保険者番号"] == record["InsurerNumber"]
    assert row["資格確認書等の種別"] == "01 被保険者証（一般）"
    assert row["未就学区分"] == "なし"
    assert row["資格喪失日"] == "なし"
    flag = record["LimitApplicationCertificateRelatedInfo"][
        "LimitApplicationCertificateClassificationFlag"
    ]
    assert (
        row["限度額適用認定証 適用区分"] == {"B02": "B02 現役並みⅡ", "B03": "B03 現役並みⅠ"}[flag]
    )
    assert row["本人確認"] == "暗証番号"
    # the machine CSV keeps codes and empty cells
    plain = list(
        csv.DictReader(io.StringIO(receipt_staff.get(f"/export/{v.day}.csv").text.lstrip("\ufeff")))
    )
    (mine,) = [r for r in plain if r["verification_id"] == v.id]
    assert mine["InsuredCardClassification"] == "01"
    assert mine["DisqualificationDate"] == ""
