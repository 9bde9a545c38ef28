"""The dashboard's part of the result files and of the outage path.

- a notice on every signed-in page while result files cannot be written (with a retry);
- on a verification's page: its result file, the user certificate's expiry notice, and the
  manual confirmation form when the national system could not answer;
- the one-click re-check of the visits confirmed by hand, once the system is back.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from clinic.context import ClinicContext
from clinic.dashboard.login import Sessions
from clinic.dashboard.receipt_notice import receipts_of
from clinic.dashboard.site import VERIFICATION_ID, Site, local_path
from clinic.eligibility import Verification
from clinic.i18n import Lang
from clinic.receipt_files.manual import (
    DETAIL_FIELDS,
    METHODS,
    RECHECKABLE,
    ManualConfirmationError,
    ManualConfirmations,
)
from clinic.staff import StaffSession
from contract.certificate_expiry import in_window

RENEW_JA = "更新はお住まいの市区町村の窓口で（マイナンバーカードの電子証明書の更新）。"
RENEW_EN = "Renewal at the patient's municipal office (the card's electronic certificates)."


def manual_of(context: ClinicContext) -> ManualConfirmations:
    manual = context.extras["manual_confirmations"]
    assert isinstance(manual, ManualConfirmations)
    return manual


def expiry_notice(v: Verification, now: float, tz: Any, lang: Lang) -> str | None:
    """When the user certificate expires (or expired) and where to renew, from three
    months before until three months after the expiry."""
    if v.cert_not_after is None or not in_window(v.cert_not_after, now):
        return None
    day = dt.datetime.fromtimestamp(v.cert_not_after, tz).strftime("%Y-%m-%d")
    days = int((v.cert_not_after - now) // 86400)
    if lang == "ja":
        when = f"あと{days}日" if days >= 0 else f"{-days}日前に期限切れ"
        return f"利用者証明用電子証明書の有効期限は {day}（{when}）。{RENEW_JA}"
    when = f"in {days} days" if days >= 0 else f"expired {-days} days ago"
    return f"The user certificate expires on {day} ({when}). {RENEW_EN}"


def detail_extras(context: ClinicContext, v: Verification, lang: Lang) -> dict[str, Any]:
    """What the verification page shows of its result file, the certificate's expiry and
    the manual confirmation (blocking: run on a worker thread)."""
    receipts = receipts_of(context)
    receipt = receipts.status_of(v.id) if receipts is not None else None
    manual = manual_of(context).get(v.id)
    return {
        "receipt": receipt,
        "expiry_notice": expiry_notice(v, context.clock(), context.service.tz, lang),
        "manual": manual,
        "manual_method": (
            (METHODS[manual.method][0 if lang == "ja" else 1]) if manual is not None else ""
        ),
        "manual_form": v.reason_code == RECHECKABLE or manual is not None,
        "methods": {k: v[0 if lang == "ja" else 1] for k, v in METHODS.items()},
        "detail_fields": DETAIL_FIELDS,
    }


class Outage:
    def __init__(self, site: Site, sessions: Sessions) -> None:
        self.site = site
        self.sessions = sessions
        self.context = site.context

    async def record_manual(
        self, request: Request, session: StaffSession, form: dict[str, str]
    ) -> Response:
        verification_id = request.path_params["verification_id"]
        if not VERIFICATION_ID.match(verification_id):
            return self.site.error_page(request, session, 404, "error.not_found")
        manual = manual_of(self.context)
        try:
            await self.context.run(
                manual.record,
                verification_id,
                form.get("method", ""),
                {k: form.get(k, "") for k in DETAIL_FIELDS},
                by=session.username,
            )
        except ManualConfirmationError as exc:
            return self.site.render(
                request, "error.html", session, 400, message_key="manual.invalid", detail=str(exc)
            )
        await self.context.run(
            self.context.access_log.record, session.username, "manual.record", [verification_id]
        )
        return RedirectResponse(f"/verifications/{verification_id}", 303)

    async def recheck(
        self, request: Request, session: StaffSession, form: dict[str, str]
    ) -> Response:
        manual = manual_of(self.context)
        await self.context.run(manual.recheck_waiting, by=session.username)
        return RedirectResponse(local_path(form.get("next"), "/"), 303)

    async def retry_files(
        self, request: Request, session: StaffSession, form: dict[str, str]
    ) -> Response:
        receipts = receipts_of(self.context)
        if receipts is not None:
            await self.context.run(receipts.retry_now)
            await self.context.run(receipts.drain)
        return RedirectResponse(local_path(form.get("next"), "/"), 303)

    def routes(self) -> list[Route]:
        checked = self.sessions.checked_form
        return [
            Route(
                "/verifications/{verification_id}/manual",
                checked(self.record_manual),
                methods=["POST"],
            ),
            Route("/recheck", checked(self.recheck), methods=["POST"]),
            Route("/receipt-files/retry", checked(self.retry_files), methods=["POST"]),
        ]
