"""A day's checks for receipt software: ``/export/{day}.csv`` and ``/export/{day}.json``.

CSV is UTF-8 with a byte-order mark (spreadsheet software in Japan expects it), one row per
record, record fields in ``RECORD_FIELDS`` order with nested objects as ``Parent.Child``
columns. Every export of records is written to the access log.
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
from clinic.dashboard.site import DAY, Site
from clinic.eligibility import Verification
from clinic.national.interface import RECORD_FIELDS
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
        viewed = [v.id for v in verifications if v.records]
        if viewed:
            await self.context.run(
                self.context.access_log.record,
                session.username,
                f"export.{kind}",
                viewed,
                {"day": day},
            )
        filename = f"onshi-eligibility-{day}.{kind}"
        headers = {"content-disposition": f'attachment; filename="{filename}"'}
        if kind == "json":
            body = json.dumps(
                [self.export_item(v) for v in verifications], ensure_ascii=False, indent=1
            )
            return Response(body, media_type="application/json", headers=headers)
        return Response(
            self.export_csv(verifications), media_type="text/csv; charset=utf-8", headers=headers
        )

    def export_item(self, v: Verification) -> dict[str, Any]:
        return {
            "verification_id": v.id,
            "verified_at": self.context.service.iso(v.created_at),
            "device_id": v.device_id,
            "mode": v.mode,
            "state": v.public_state,
            "reason_code": v.reason_code,
            "validity_code": v.validity_code,
            "records": v.records or [],
        }

    def export_csv(self, verifications: list[Verification]) -> str:
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
                writer.writerow([*head, *(_csv_safe(flat.get(c, "")) for c in columns)])
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
