"""The notice every signed-in page shows while result files cannot be written."""

from __future__ import annotations

import datetime as dt
from typing import Any

from clinic.context import ClinicContext
from clinic.i18n import Lang
from clinic.receipt_files.queue import ReceiptQueue

_FAILURE_WORDS = {
    "missing": (
        "フォルダがありません（共有フォルダの接続を確認）",
        "folder missing (share mounted?)",
    ),
    "not_a_folder": ("フォルダではありません", "not a folder"),
    "read_only": ("読み取り専用です", "read-only file system"),
    "full": ("ディスクがいっぱいです", "disk full"),
    "denied": ("書き込み権限がありません", "no permission to write"),
    "io": ("書き込みエラー", "write error"),
}


def receipts_of(context: ClinicContext) -> ReceiptQueue | None:
    receipts = context.extras.get("receipt_files")
    return receipts if isinstance(receipts, ReceiptQueue) else None


def receipt_notice(context: ClinicContext, lang: Lang) -> dict[str, Any] | None:
    """The banner every signed-in page shows while result files wait for their folder."""
    receipts = receipts_of(context)
    if receipts is None or not receipts.settings.enabled:
        return None
    problems = receipts.problems()
    if not problems:
        return None
    first = problems[0]
    words = _FAILURE_WORDS.get(first.error_code, _FAILURE_WORDS["io"])
    tz = context.service.tz
    return {
        "count": len(problems),
        "why": words[0] if lang == "ja" else words[1],
        "folder": str(receipts.settings.folder),
        "since": dt.datetime.fromtimestamp(first.since, tz).strftime("%H:%M:%S"),
        "next": dt.datetime.fromtimestamp(first.next_try_at, tz).strftime("%H:%M:%S"),
    }
