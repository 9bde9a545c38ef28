"""A day's checks as CSV and JSON for receipt software."""

from __future__ import annotations

import csv
import io


def test_export_of_a_day_as_csv_and_json_for_receipt_software(clinic, staff):
    result = clinic.kiosk().check(clinic.card("valid-preschool-public-expense"), "pin")
    v = clinic.context.service.get(result.verification_id)
    record = v.records[0]
    as_csv = staff.get(f"/export/{v.day}.csv")
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.text.lstrip("\ufeff"))))
    mine = [r for r in rows if r["verification_id"] == v.id]
    assert len(mine) == 1
    assert mine[0]["InsurerNumber"] == record["InsurerNumber"]
    assert mine[0]["InsuredPartialContributionRatio"] == "020"
    expense = record["PublicExpenseInfo"][0]
    assert mine[0]["PublicExpenseInfo"] == (
        f"{expense['PublicExpenseNumber']}:{expense['BeneficiaryNumber']}"
    )
    as_json = staff.get(f"/export/{v.day}.json").json()
    item = next(i for i in as_json if i["verification_id"] == v.id)
    assert item["records"] == v.records
    assert item["validity_code"] == 1
    actions = {e["action"] for e in clinic.context.access_log.for_verification(v.id)}
    assert {"export.csv", "export.json"} <= actions


def test_several_matches_export_one_row_per_record(clinic, staff):
    result = clinic.kiosk().check(clinic.card("several-matches"), "pin")
    v = clinic.context.service.get(result.verification_id)
    rows = list(
        csv.DictReader(io.StringIO(staff.get(f"/export/{v.day}.csv").text.lstrip("\ufeff")))
    )
    assert len([r for r in rows if r["verification_id"] == v.id]) == 2
