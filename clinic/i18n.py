"""The dashboard's words in Japanese (default) and English, and Japanese era dates."""

from __future__ import annotations

import datetime as dt
from typing import Literal

Lang = Literal["ja", "en"]
LANGS: tuple[Lang, ...] = ("ja", "en")

TEXT: dict[str, tuple[str, str]] = {
    "app.title": ("オンライン資格確認 受付", "Eligibility check - reception"),
    "nav.today": ("本日の確認", "Today"),
    "nav.queue": ("対応待ち", "Needs staff"),
    "nav.kiosks": ("キオスク", "Kiosks"),
    "nav.access_log": ("アクセスログ", "Access log"),
    "nav.logout": ("ログアウト", "Log out"),
    "nav.lang": ("English", "日本語"),
    "login.title": ("職員ログイン", "Staff login"),
    "login.username": ("ユーザー名", "User name"),
    "login.password": ("パスワード", "Password"),
    "login.submit": ("ログイン", "Log in"),
    "login.failed": (
        "ユーザー名またはパスワードが違います（続けて間違えると、次に試せるまで待ち時間が延びます）。",
        "Wrong user name or password (repeated failures mean longer waits before the next try).",
    ),
    "login.wait": (
        "ログインの試行が多すぎます。{s} 秒後にもう一度お試しください。",
        "Too many login attempts: please try again in {s} s.",
    ),
    "login.expired": ("セッションの有効期限が切れました。", "Your session has expired."),
    "list.heading": ("確認結果", "Verifications"),
    "list.day": ("日付", "Day"),
    "list.show": ("表示", "Show"),
    "list.time": ("時刻", "Time"),
    "list.kiosk": ("キオスク", "Kiosk"),
    "list.mode": ("本人確認", "Identification"),
    "list.result": ("結果", "Result"),
    "list.status": ("状態", "Status"),
    "list.empty": ("この日の確認はまだありません。", "No verifications on this day yet."),
    "list.live": ("新しい結果は自動で表示されます。", "New results appear automatically."),
    "list.offline": (
        "サーバーとの接続が切れました。再接続しています…",
        "Lost the connection to the server; reconnecting…",
    ),
    "export.csv": ("CSV出力", "Export CSV"),
    "export.json": ("JSON出力", "Export JSON"),
    "mode.pin": ("暗証番号", "PIN"),
    "mode.visual": ("目視", "Visual"),
    "status.done": ("完了", "Done"),
    "status.awaiting_staff": ("目視確認待ち", "Awaiting visual check"),
    "status.needs_staff": ("要対応", "Needs staff"),
    "status.handled": ("対応済み", "Handled"),
    "detail.heading": ("資格確認結果", "Eligibility result"),
    "detail.meta": ("確認情報", "Check"),
    "detail.reason": ("職員向け説明", "For staff"),
    "detail.no_record": ("資格情報はありません。", "No eligibility record."),
    "detail.record": ("資格情報", "Eligibility record"),
    "detail.record_n": ("該当資格", "Matching record"),
    "detail.views": ("この記録の閲覧履歴", "Who viewed this record"),
    "detail.validity": ("資格有効性", "Validity"),
    "detail.cert_expiry": ("利用者証明書 有効期限", "User certificate expires"),
    "detail.in_grace": ("（有効期限切れ・猶予期間内）", "(expired, within grace)"),
    "detail.decided_by": ("目視確認者", "Visual check by"),
    "detail.handled_by": ("対応者", "Handled by"),
    "action.confirm": ("本人確認OK（確定）", "Identity confirmed"),
    "action.reject": ("本人と確認できない", "Cannot confirm identity"),
    "action.handled": ("対応済みにする", "Mark handled"),
    "action.open": ("詳細", "Open"),
    # result files and the outage path (clinic.receipt_files)
    "value.none": ("なし", "none"),
    "receipts.failing": (
        "レセコン用の結果ファイルを書き込めません（{n}件待機中）: {why}",
        "Result files for the receipt software cannot be written ({n} waiting): {why}",
    ),
    "receipts.retry": ("今すぐ再試行", "Retry now"),
    "receipts.next": ("次の自動再試行", "next automatic retry"),
    "receipts.file": ("レセコン用ファイル", "Receipt-software file"),
    "receipts.written": ("書き込み済み", "written"),
    "receipts.pending": ("書き込み待ち", "waiting to be written"),
    "receipts.gaiji": (
        "外字あり: CP932で表せない文字を〓にしました（{fields}）。"
        "レセコンで正しい字に直してください。",
        "外字: characters CP932 cannot hold were written as 〓 ({fields}); correct them in the"
        " receipt software.",
    ),
    "expiry.heading": ("電子証明書の有効期限", "Certificate expiry"),
    "manual.heading": ("手動での資格確認（システム障害時）", "Manual confirmation (system down)"),
    "manual.method": ("確認方法", "Confirmed with"),
    "manual.name": ("氏名", "Name"),
    "manual.sex": ("性別", "Sex"),
    "manual.birthdate": ("生年月日", "Birth date"),
    "manual.address": ("住所", "Address"),
    "manual.insurer": ("保険者（分かれば）", "Insurer (if known)"),
    "manual.save": ("記録する", "Record"),
    "manual.recorded": ("記録者", "Recorded by"),
    "manual.recheck_waiting": (
        "システム復旧後に再照会します。",
        "Re-checked once the national system is back.",
    ),
    "manual.rechecked": ("再照会済み", "Re-checked"),
    "manual.marker": ("手動確認", "manual"),
    "manual.recheck": ("再照会する（{n}件）", "Re-check now ({n})"),
    "manual.invalid": (
        "手動確認の記録に不備があります。",
        "The manual confirmation is incomplete.",
    ),
    "queue.heading": ("職員の対応が必要な患者", "Patients who need staff"),
    "queue.empty": ("対応待ちはありません。", "Nobody is waiting."),
    "queue.badge": ("対応待ち", "waiting for staff"),
    "queue.title": ("（{n}件 対応待ち）", "({n} waiting)"),
    "queue.sound_on": ("呼出音：オン", "Chime: on"),
    "queue.sound_off": ("呼出音：オフ", "Chime: off"),
    "queue.pinned": ("目視確認待ち", "Visual check waiting"),
    "queue.why": ("理由", "Why"),
    "queue.say": ("対応", "What to do"),
    "queue.visit": ("呼出番号", "Call number"),
    "queue.late": (
        "キオスクがサーバーに届かない間の呼出です（後から届きました）",
        "Raised while the kiosk could not reach the server (arrived later)",
    ),
    "queue.decided": ("目視確認の結果", "Visual check decided"),
    "queue.reason.no_card": ("カードがない方（資格確認書など）", "No card (資格確認書 or none)"),
    "queue.reason.patient": ("患者が職員を呼びました", "The patient called for staff"),
    "queue.reason.notice": ("受付へご案内", "Sent to the desk"),
    "queue.reason.card_left": ("カードの置き忘れ", "Card left on the reader"),
    "queue.reason.reader_missing": ("カードリーダーが使えません", "Card reader missing"),
    "queue.reason.server_unreachable": (
        "キオスクがサーバーに届きません",
        "The kiosk cannot reach the server",
    ),
    "queue.reason.visual_check": ("目視確認", "Visual check"),
    "queue.reason.visual_check.phone": (
        "目視確認（暗証番号を出せないスマートフォン）",
        "Visual check (a phone that cannot give a PIN)",
    ),
    "queue.card_left_do": (
        "キオスクにカードが残っています。持ち主に返すか、預かってください。",
        "A card is still on the kiosk's reader: give it back or keep it safe.",
    ),
    "notices.heading": ("キオスクの案内番号", "The kiosk's notice codes"),
    "notices.nav": ("案内番号", "Notice codes"),
    "notices.code": ("番号", "Code"),
    "notices.saw": ("患者の画面", "What the patient saw"),
    "notices.do": ("職員の対応", "What staff do"),
    "notices.light": ("ランプ", "Light"),
    "notices.amber": ("黄（職員を呼出）", "amber (staff called)"),
    "notices.red": ("赤", "red"),
    "notices.print": ("印刷", "Print"),
    "detail.before_check": (
        "目視確認の後に資格を確認します。",
        "Eligibility is checked once staff confirm the patient.",
    ),
    "kiosks.heading": ("キオスクの状態", "Kiosks"),
    "kiosks.device": ("端末", "Device"),
    "kiosks.last_seen": ("最終通信", "Last seen"),
    "kiosks.health": ("状態", "Health"),
    "kiosks.detail": ("詳細", "Detail"),
    "kiosks.certificate": ("証明書", "Certificate"),
    "kiosks.revoked": ("失効済み", "revoked"),
    "kiosks.valid_until": ("有効期限", "valid until"),
    "kiosks.never": ("未接続", "never"),
    "kiosks.stale": ("応答なし", "silent"),
    "kiosks.outbox": ("ログ送信", "Log upload"),
    "kiosks.outbox_none": ("まだ届いていません", "nothing yet"),
    "kiosks.backlog": ("未送信", "backlog"),
    "kiosks.last_upload": ("最終送信", "last upload"),
    "kiosks.gaps": ("欠番", "gaps"),
    "kiosks.heartbeat": ("最終ハートビート", "Last heartbeat"),
    "kiosks.reader": ("カードリーダー", "Reader"),
    "kiosks.clock": ("時刻同期", "Clock"),
    "kiosks.clock_synced": ("同期済み", "synchronised"),
    "kiosks.clock_unsynced": ("未同期", "not synchronised"),
    "kiosks.unknown": ("不明", "unknown"),
    "kiosks.temperature": ("温度", "Temperature"),
    "kiosks.version": ("バージョン", "Version"),
    "kiosks.slots": ("更新スロット", "slots"),
    "kiosks.last_update": ("最後の更新", "last update"),
    "kiosks.uptime": ("稼働時間", "Uptime"),
    "kiosks.notice": ("最後の案内", "Last notice"),
    "kiosks.oldest": ("最古", "oldest"),
    "kiosks.no_heartbeat": ("ハートビートなし", "no heartbeat yet"),
    "kiosks.flagged": ("要確認", "needs attention"),
    "kiosks.badge": ("要確認の端末", "Kiosks needing attention"),
    "kiosks.crl": ("失効リスト（CRL）", "Revocation lists (CRL)"),
    "kiosks.crl_none": ("CRLが読み込まれていません。", "No CRL loaded."),
    "log.heading": ("記録閲覧のアクセスログ", "Record access log"),
    "log.chain_ok": ("改ざん検知：正常（{n}件）", "Tamper check: intact ({n} entries)"),
    "log.chain_bad": (
        "改ざん検知：ID {id} 以降の記録が改変されています",
        "Tamper check: entries from id {id} were altered",
    ),
    "log.at": ("日時", "When"),
    "log.user": ("職員", "Who"),
    "log.action": ("操作", "Action"),
    "log.record": ("記録", "Record"),
    "log.admin_only": ("管理者のみ閲覧できます。", "Administrators only."),
    "button.heading": (
        "キオスクのボタンで確認された目視確認",
        "Visual checks confirmed with a kiosk's button",
    ),
    "button.none": ("取消できる確認はありません。", "Nothing to revoke."),
    "button.until": ("取消期限", "revocable until"),
    "button.revoke": ("確認を取り消す", "Revoke"),
    "button.revoked": ("取消済み", "revoked"),
    "button.confirmed_at": ("ボタン確認", "Button confirmation"),
    "alarm.heading": ("警報", "Alarm"),
    "alarm.button_rate": (
        "キオスク {device} のボタン確認が1時間あたりの上限（{limit}件）を超えました"
        "（{count}回拒否、最終 {last}）。端末の鍵が盗まれた可能性があります。",
        "Kiosk {device} went over its limit of {limit} button confirmations an hour "
        "({count} refused, last at {last}). Its device key may be stolen.",
    ),
    "alarm.clear": ("確認済みにする", "Acknowledge"),
    "error.not_found": ("見つかりません。", "Not found."),
    "error.conflict": ("この確認はすでに処理されています。", "This check was already handled."),
    "error.csrf": (
        "フォームの有効期限が切れました。もう一度操作してください。",
        "The form expired; please try again.",
    ),
    "error.unavailable": (
        "ただいま処理できません。少し待ってからもう一度操作してください。",
        "This cannot be done right now; please try again in a moment.",
    ),
    "error.server": ("サーバーで問題が発生しました。", "The server could not do this."),
}

#: Short result labels for list rows, by reason code.
RESULT_LABELS: dict[str, tuple[str, str]] = {
    "eligible": ("有効", "Valid"),
    "eligible.in_grace": ("有効（証明書期限切れ猶予中）", "Valid (certificate in grace)"),
    "nonce.unknown": ("再試行（不明なチャレンジ）", "Retry (unknown challenge)"),
    "nonce.used": ("再試行（使用済みチャレンジ）", "Retry (challenge replayed)"),
    "nonce.expired": ("再試行（チャレンジ期限切れ）", "Retry (challenge expired)"),
    "certificate.malformed": ("証明書読取不可", "Certificate unreadable"),
    "signature.missing": ("署名なし", "No signature"),
    "signature.invalid": ("署名不一致", "Bad signature"),
    "certificate.untrusted": ("対象外のカード", "Card not accepted"),
    "certificate.revoked": ("証明書失効", "Certificate revoked"),
    "revocation.unavailable": ("失効確認不可", "Revocation unknown"),
    "certificate.not_yet_valid": ("証明書期間前", "Certificate not yet valid"),
    "certificate.expired": ("証明書期限切れ", "Certificate expired"),
    "visual.awaiting_staff": ("目視確認待ち", "Awaiting visual check"),
    "visual.rejected": ("目視確認NG", "Visual check failed"),
    "visual.revoked": ("ボタン確認を取消", "Button confirmation revoked"),
    "national.unavailable": ("システム接続不可", "System unreachable"),
    "national.revoked": ("証明書失効（国）", "Revoked (national)"),
    "national.invalid": ("無効", "Invalid"),
    "national.newer_qualification": ("無効・新しい資格あり", "Invalid, newer exists"),
    "national.not_found": ("該当資格なし", "No qualification"),
    "national.multiple": ("複数該当", "Several match"),
}

ACTION_LABELS: dict[str, tuple[str, str]] = {
    "view": ("詳細表示", "viewed"),
    "export.csv": ("CSV出力", "exported CSV"),
    "export.json": ("JSON出力", "exported JSON"),
    "button.revoke": ("ボタン確認を取消", "revoked a button confirmation"),
    "alarm.clear": ("警報を確認", "acknowledged an alarm"),
    "manual.record": ("手動確認を記録", "recorded a manual confirmation"),
}

FIELD_LABELS: dict[str, tuple[str, str]] = {
    "InsuredCardClassification": ("資格確認書等の種別", "Card classification"),
    "InsurerNumber": ("保険者番号", "Insurer number"),
    "InsurerName": ("保険者名", "Insurer name"),
    "InsuredCardSymbol": ("記号", "Symbol"),
    "InsuredIdentificationNumber": ("番号", "Number"),
    "InsuredBranchNumber": ("枝番", "Branch"),
    "PersonalFamilyClassification": ("本人・家族", "Insured / family"),
    "Name": ("氏名", "Name"),
    "NameKana": ("氏名（カナ）", "Name (kana)"),
    "Sex1": ("性別", "Sex"),
    "Birthdate": ("生年月日", "Birth date"),
    "Address": ("住所", "Address"),
    "PostNumber": ("郵便番号", "Postcode"),
    "QualificationDate": ("資格取得日", "Qualified on"),
    "DisqualificationDate": ("資格喪失日", "Disqualified on"),
    "InsuredCardValidDate": ("有効開始日", "Valid from"),
    "InsuredCardExpirationDate": ("有効期限", "Valid until"),
    "InsuredPartialContributionRatio": ("負担割合", "Copay"),
    "PreschoolClassification": ("未就学区分", "Preschool"),
    "ReasonOfLoss": ("喪失事由", "Reason of loss"),
    "ElderlyRecipientCertificateInfo": ("高齢受給者証", "Elderly recipient"),
    "LimitApplicationCertificateRelatedInfo": ("限度額適用認定証", "Limit certificate"),
    "PublicExpenseInfo": ("公費", "Public expense"),
    "StartDate": ("開始日", "From"),
    "EndDate": ("終了日", "Until"),
    "ContributionRatio": ("負担割合", "Copay"),
    "LimitApplicationCertificateClassification": ("認定証区分", "Certificate kind"),
    "ValidStartDate": ("開始日", "From"),
    "ValidEndDate": ("終了日", "Until"),
    "ElderlyRecipientCertificateDate": ("交付日", "Issued"),
    "ElderlyRecipientValidStartDate": ("開始日", "From"),
    "ElderlyRecipientValidEndDate": ("終了日", "Until"),
    "ElderlyRecipientContributionRatio": ("負担割合", "Copay"),
    "LimitApplicationCertificateClassificationFlag": ("適用区分", "Class"),
    "LimitApplicationCertificateDate": ("交付日", "Issued"),
    "LimitApplicationCertificateValidStartDate": ("開始日", "From"),
    "LimitApplicationCertificateValidEndDate": ("終了日", "Until"),
    "LimitApplicationCertificateLongTermDate": ("長期入院該当日", "Long-term stay from"),
    "PublicExpenseNumber": ("負担者番号", "Payer number"),
    "BeneficiaryNumber": ("受給者番号", "Beneficiary number"),
}

SEX = {"1": ("男", "male"), "2": ("女", "female"), "3": ("未設定", "unset")}
PERSONAL_FAMILY = {"1": ("本人", "insured"), "2": ("家族", "family")}

_ERAS = (
    (dt.date(2019, 5, 1), "令和", "R"),
    (dt.date(1989, 1, 8), "平成", "H"),
    (dt.date(1926, 12, 25), "昭和", "S"),
    (dt.date(1912, 7, 30), "大正", "T"),
    (dt.date(1868, 1, 25), "明治", "M"),
)


def t(key: str, lang: Lang) -> str:
    ja, en = TEXT[key]
    return ja if lang == "ja" else en


def pick(pair: tuple[str, str] | None, lang: Lang, default: str = "") -> str:
    if pair is None:
        return default
    return pair[0] if lang == "ja" else pair[1]


def parse_yyyymmdd(value: object) -> dt.date | None:
    if not isinstance(value, str) or len(value) != 8 or not value.isdigit():
        return None
    try:
        return dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None


def wareki(date: dt.date) -> str:
    """``2026-11-24`` -> ``令和8年11月24日`` (the first year written 元年)."""
    for start, name, _ in _ERAS:
        if date >= start:
            year = date.year - start.year + 1
            year_text = "元" if year == 1 else str(year)
            return f"{name}{year_text}年{date.month}月{date.day}日"
    return date.isoformat()


def format_date(value: object, lang: Lang) -> str:
    """A YYYYMMDD field as receipt software shows it: era date and Western date."""
    date = parse_yyyymmdd(value)
    if date is None:
        return "" if value in (None, "") else str(value)
    western = f"{date.year}/{date.month:02d}/{date.day:02d}"
    return f"{wareki(date)}（{western}）" if lang == "ja" else western


def format_ratio(value: object, lang: Lang) -> str:
    """``"030"`` -> ``3割 (30%)``."""
    if not isinstance(value, str) or not value.isdigit():
        return "" if value in (None, "") else str(value)
    percent = int(value)
    if lang == "ja":
        tenths = percent / 10
        wari = f"{int(tenths)}割" if tenths == int(tenths) else f"{tenths:g}割"
        return f"{wari}（{percent}%）"
    return f"{percent} %"


def format_value(key: str, value: object, lang: Lang) -> str:
    """A nested field by its name: dates and ratios as receipt software shows them."""
    if value is None:
        return ""
    if key.endswith("Date"):
        return format_date(value, lang)
    if key.endswith("Ratio"):
        return format_ratio(value, lang)
    return str(value)
