"""A day's checks for receipt software: ``/export/{day}.csv`` and ``/export/{day}.json``.

CSV is UTF-8 with a byte-order mark (spreadsheet software in Japan expects it), one row per
record, record fields in ``RECORD_FIELDS`` order with nested objects as ``Parent.Child``
columns, then the visit's manual confirmation (outage path). ``.csv?headers=ja`` is the same
for staff: Japanese headers, coded fields with their words (``01 被保険者証（一般）``), なし for
an empty date or code. Every export of records is written to the access log.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clinic.dashboard.login import Sessions
from clinic.dashboard.outage import manual_of
from clinic.dashboard.site import DAY, Site
from clinic.eligibility import EligibilityService, Verification
from clinic.i18n import FIELD_LABELS, TEXT
from clinic.national.interface import RECORD_FIELDS
from clinic.receipt_files.labels import NONE_JA, code_label, is_coded
from clinic.receipt_files.manual import METHODS, ManualConfirmation
from clinic.staff import StaffSession


class Export:
    def __init__(self, site: Site, sessions: Sessions) -> None:
        self.site = site
        self.sessions = sessions
        self.context = site.context

    async def export(self, request: Request, session: StaffSession) -> Response:
        day = request.path_params["day"]
        kind = request.path_params["kind"]
        if not DAY.match(day) or kind not in ("csv", "json"):
            return self.site.error_page(request, session, 404, "error.not_found")
        verifications = await self.context.run(self.context.service.of_day, day)
        verifications.sort(key=lambda v: (v.created_at, v.id))
        japanese = kind == "csv" and request.query_params.get("headers") == "ja"
        manual = await self.context.run(manual_of(self.context).of_day, day)
        viewed = [v.id for v in verifications if v.records or v.id in manual]
        if viewed:
            await self.context.run(
                self.context.access_log.record,
                session.username,
                f"export.{kind}",
                viewed,
                {"day": day},
            )
        filename = f"onshi-eligibility-{day}{'-ja' if japanese else ''}.{kind}"
        headers = {"content-disposition": f'attachment; filename="{filename}"'}
        if kind == "json":
            body = json.dumps(
                [self.export_item(v, manual.get(v.id)) for v in verifications],
                ensure_ascii=False,
                indent=1,
            )
            return Response(body, media_type="application/json", headers=headers)
        if japanese:
            body = japanese_csv(self.context.service, verifications, manual)
            return Response(body, media_type="text/csv; charset=utf-8", headers=headers)
        return Response(
            self.export_csv(verifications, manual),
            media_type="text/csv; charset=utf-8",
            headers=headers,
        )

    def export_item(
        self, v: Verification, manual: ManualConfirmation | None = None
    ) -> dict[str, Any]:
        return {
            "verification_id": v.id,
            "verified_at": self.context.service.iso(v.created_at),
            "device_id": v.device_id,
            "mode": v.mode,
            "state": v.public_state,
            "reason_code": v.reason_code,
            "validity_code": v.validity_code,
            "records": v.records or [],
            "manual_confirmation": manual_item(manual),
        }

    def export_csv(
        self,
        verifications: list[Verification],
        manual: dict[str, ManualConfirmation] | None = None,
    ) -> str:
        columns = export_columns(verifications)
        out = io.StringIO()
        out.write("\ufeff")  # spreadsheet software in Japan reads UTF-8 with the mark
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(
            [
                "verification_id",
                "verified_at",
                "device_id",
                "mode",
                "reason_code",
                "validity_code",
                *columns,
                *MANUAL_COLUMNS,
            ]
        )
        for v in verifications:
            head = [
                v.id,
                self.context.service.iso(v.created_at),
                v.device_id,
                v.mode,
                v.reason_code,
                "" if v.validity_code is None else str(v.validity_code),
            ]
            for record in v.records or [{}]:
                flat = flatten_record(record)
                tail = manual_cells((manual or {}).get(v.id))
                writer.writerow(
                    [*head, *(_csv_safe(flat.get(c, "")) for c in columns), *map(_csv_safe, tail)]
                )
        return out.getvalue()

    def routes(self) -> list[Route]:
        return [Route("/export/{day}.{kind}", self.sessions.guarded(self.export), methods=["GET"])]


def flatten_record(record: dict[str, Any]) -> dict[str, str]:
    """A record as flat columns: nested objects as ``Parent.Child``, lists joined by ``;``."""
    flat: dict[str, str] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            for sub, sub_value in value.items():
                flat[f"{key}.{sub}"] = "" if sub_value is None else str(sub_value)
        elif isinstance(value, list):
            parts = []
            for item in value:
                if isinstance(item, dict):
                    parts.append(":".join("" if x is None else str(x) for x in item.values()))
                else:
                    parts.append(str(item))
            flat[key] = ";".join(parts)
        else:
            flat[key] = "" if value is None else str(value)
    return flat


def export_columns(verifications: list[Verification]) -> list[str]:
    """The record columns: RECORD_FIELDS' order (docs/eligibility.md), then nested fields."""
    nested: dict[str, list[str]] = {}
    for v in verifications:
        for record in v.records or []:
            for key, value in record.items():
                if isinstance(value, dict):
                    known = nested.setdefault(key, [])
                    known.extend(sub for sub in value if sub not in known)
    columns: list[str] = []
    for name in RECORD_FIELDS:
        if name in nested:
            columns += [f"{name}.{sub}" for sub in nested[name]]
        else:
            columns.append(name)
    return columns


#: What makes spreadsheet software read a cell as a formula, after any leading white space
#: (the full-width forms too: Japanese input methods produce them).
_FORMULA_LEADS = "=+-@\uff1d\uff0b\uff0d\uff20"


def _csv_safe(value: str) -> str:
    """Keep spreadsheet software from running a cell as a formula.

    A cell starting with a tab or carriage return, or whose first character after leading
    white space (spaces, line breaks, the ideographic space) is ``= + - @``, gets a leading
    ``'``: spreadsheets skip the white space and run ``" =1+1"`` or ``"\n=2+2"`` too.
    """
    if not value:
        return value
    if value[0] in "\t\r":
        return "'" + value
    stripped = value.lstrip()
    if stripped and stripped[0] in _FORMULA_LEADS:
        return "'" + value
    return value


# --- the visit's manual confirmation (outage path) -------------------------------------------

MANUAL_COLUMNS = (
    "manual_method",
    "manual_name",
    "manual_sex",
    "manual_birthdate",
    "manual_address",
    "manual_insurer",
    "manual_recorded_by",
    "manual_recheck",
)
_MANUAL_JA = (
    "手動確認の方法",
    "手動確認 氏名",
    "手動確認 性別",
    "手動確認 生年月日",
    "手動確認 住所",
    "手動確認 保険者",
    "手動確認 記録者",
    "再照会",
)


def manual_item(manual: ManualConfirmation | None) -> dict[str, Any] | None:
    if manual is None:
        return None
    return {
        "method": manual.method,
        **manual.details,
        "recorded_by": manual.recorded_by,
        "recheck": manual.recheck_state,
        "recheck_reason": manual.recheck_reason,
    }


def manual_cells(manual: ManualConfirmation | None, *, japanese: bool = False) -> list[str]:
    if manual is None:
        return [""] * len(MANUAL_COLUMNS)
    details = manual.details
    method = METHODS[manual.method][0] if japanese else manual.method
    return [
        method,
        *(details.get(k, "") for k in ("name", "sex", "birthdate", "address", "insurer")),
        manual.recorded_by,
        manual.recheck_state,
    ]


# --- the CSV for staff, with Japanese headers --------------------------------------------------


def _ja_header(column: str) -> str:
    parent, _, child = column.partition(".")
    label = FIELD_LABELS.get(child or parent)
    text = label[0] if label else column
    if child:
        parent_label = FIELD_LABELS.get(parent)
        text = f"{parent_label[0] if parent_label else parent} {text}"
    return text


def _ja_value(column: str, value: str) -> str:
    key = column.rpartition(".")[2]
    if is_coded(key):
        return code_label(key, value or None)
    if key.endswith("Date") or key == "Birthdate":
        return value or NONE_JA
    return value


def japanese_csv(
    service: EligibilityService,
    verifications: list[Verification],
    manual: dict[str, ManualConfirmation],
) -> str:
    """The day's checks for staff: Japanese headers, words for the codes, なし for empties."""
    columns = export_columns(verifications)
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            "確認ID",
            "確認日時",
            "キオスク",
            "本人確認",
            "結果",
            "資格有効性",
            *(_ja_header(c) for c in columns),
            *_MANUAL_JA,
        ]
    )
    for v in verifications:
        head = [
            v.id,
            service.iso(v.created_at),
            v.device_id,
            TEXT[f"mode.{v.mode}"][0],
            v.reason_code,
            "" if v.validity_code is None else str(v.validity_code),
        ]
        tail = manual_cells(manual.get(v.id), japanese=True)
        for record in v.records or [{}]:
            flat = flatten_record(record)
            cells = [_csv_safe(_ja_value(c, flat.get(c, "")) if record else "") for c in columns]
            writer.writerow([*head, *cells, *map(_csv_safe, tail)])
    return out.getvalue()
