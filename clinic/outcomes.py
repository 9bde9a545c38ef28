"""Every way a verification can end: reason code, patient message code and staff text.

The reason code names the check that decided (``nonce.used``, ``certificate.revoked``...);
the patient message code is what the kiosk shows, from its own catalogue; the staff text says,
in Japanese and English, what happened and what to do at the desk.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    reason_code: str
    patient_message: str
    staff_ja: str
    staff_en: str
    #: the patient needs someone at the desk
    needs_staff: bool
    #: trying again (with a fresh challenge) may succeed
    temporary: bool = False


_SEE_DESK_MUNICIPAL = "受付へ。証明書の更新は市区町村窓口で。"

OUTCOMES: dict[str, Outcome] = {
    o.reason_code: o
    for o in (
        Outcome(
            "eligible",
            "eligible",
            "有効な資格を確認しました。",
            "Eligibility confirmed.",
            needs_staff=False,
        ),
        Outcome(
            "eligible.in_grace",
            "eligible.renew_certificate",
            "資格を確認しました。利用者証明用電子証明書は有効期限切れ（3か月の猶予期間内）です。"
            "市区町村窓口での更新をご案内ください。",
            "Eligibility confirmed. The card's user certificate has expired but is within the "
            "three-month grace period: advise renewal at the municipal office.",
            needs_staff=False,
        ),
        Outcome(
            "nonce.unknown",
            "retry",
            "不明なチャレンジ（このキオスクに発行されていません）。再試行してください。",
            "Unknown challenge (not issued to this kiosk). Try again.",
            needs_staff=False,
            temporary=True,
        ),
        Outcome(
            "nonce.used",
            "retry",
            "使用済みのチャレンジが再送されました（リプレイの可能性）。再試行してください。",
            "A used challenge was sent again (possible replay). Try again.",
            needs_staff=False,
            temporary=True,
        ),
        Outcome(
            "nonce.expired",
            "retry",
            "チャレンジの有効期限（約1分）が切れました。再試行してください。",
            "The challenge expired (about one minute). Try again.",
            needs_staff=False,
            temporary=True,
        ),
        Outcome(
            "certificate.malformed",
            "see_staff.card_unreadable",
            "カードの証明書を読み取れませんでした。カードを置き直すか目視確認してください。",
            "The card's certificate could not be read. Re-place the card or check by eye.",
            needs_staff=True,
            temporary=True,
        ),
        Outcome(
            "signature.missing",
            "see_staff.signature",
            "暗証番号モードなのに署名がありません。キオスクの不具合の可能性があります。",
            "PIN mode without a signature: the kiosk may be faulty.",
            needs_staff=True,
        ),
        Outcome(
            "signature.invalid",
            "see_staff.signature",
            "カードの署名が証明書と一致しません。本人確認できないため、資格確認書等で確認してください。",
            "The card's signature does not match its certificate: identity not proven. "
            "Check the qualification certificate or other documents.",
            needs_staff=True,
        ),
        Outcome(
            "certificate.untrusted",
            "see_staff.card_not_accepted",
            "公的個人認証の利用者証明用電子証明書ではありません（発行元が不明）。",
            "Not a JPKI user-authentication certificate (unknown issuer).",
            needs_staff=True,
        ),
        Outcome(
            "certificate.revoked",
            "see_staff.revoked",
            "電子証明書は失効しています。受付で資格確認書等を確認し、市区町村窓口をご案内ください。",
            "The certificate is revoked. Check other proof of insurance at the desk and "
            "refer the patient to the municipal office.",
            needs_staff=True,
        ),
        Outcome(
            "revocation.unavailable",
            "see_staff.system_down",
            "失効リスト（CRL）が取得できないか期限切れのため、失効確認ができません。"
            "マイナポータル画面または資格情報のお知らせで確認してください。",
            "The revocation list (CRL) is missing or stale, so revocation cannot be checked. "
            "Accept the Mynaportal screen or the eligibility notice.",
            needs_staff=True,
            temporary=True,
        ),
        Outcome(
            "certificate.not_yet_valid",
            "see_staff.card_not_accepted",
            "電子証明書の有効期間がまだ始まっていません（端末の時計を確認してください）。",
            "The certificate is not valid yet (check the clocks).",
            needs_staff=True,
        ),
        Outcome(
            "certificate.expired",
            "see_staff.expired",
            "電子証明書の有効期限が切れ、3か月の猶予期間も過ぎています。"
            "資格確認書等で確認し、" + _SEE_DESK_MUNICIPAL,
            "The certificate expired more than three months ago. Check other proof of "
            "insurance; renewal is done at the municipal office.",
            needs_staff=True,
        ),
        Outcome(
            "visual.awaiting_staff",
            "wait_staff",
            "目視確認待ち：カードの顔写真とご本人を照合し、確認ボタンを押してください。",
            "Waiting for visual check: compare the card photo with the patient, then confirm.",
            needs_staff=True,
        ),
        Outcome(
            "visual.rejected",
            "see_staff.rejected",
            "職員が目視確認で本人と確認できませんでした。",
            "Staff could not confirm the patient's identity by eye.",
            needs_staff=True,
        ),
        Outcome(
            "visual.revoked",
            "see_staff.rejected",
            "キオスクのボタンによる目視確認を職員が取り消しました。資格情報は破棄されています。"
            "ご本人を受付で確認し直してください。",
            "Staff revoked a visual check confirmed with the kiosk's button; the record was "
            "discarded. Check the patient again at the desk.",
            needs_staff=True,
        ),
        Outcome(
            "national.unavailable",
            "see_staff.system_down",
            "オンライン資格確認システムに接続できません。マイナンバーカードと資格情報のお知らせ"
            "またはマイナポータル画面で確認し、初診の方は被保険者資格申立書を記入してもらってください"
            "（10割負担にしないでください）。",
            "The national eligibility system is unreachable. Accept the card with the "
            "eligibility notice or the Mynaportal screen; first-visit patients fill in the "
            "self-declaration form. The patient must not pay 100 %.",
            needs_staff=True,
            temporary=True,
        ),
        Outcome(
            "national.revoked",
            "see_staff.revoked",
            "オンライン資格確認システムが証明書の失効を返しました。市区町村窓口をご案内ください。",
            "The national system reports the certificate revoked. Refer the patient to the "
            "municipal office.",
            needs_staff=True,
        ),
        Outcome(
            "national.invalid",
            "see_staff.invalid",
            "資格が無効です（喪失）。喪失事由と新しい保険証情報をご本人に確認してください。",
            "The qualification is invalid (lost). Ask the patient about the new insurance.",
            needs_staff=True,
        ),
        Outcome(
            "national.newer_qualification",
            "see_staff.newer_qualification",
            "この資格は無効ですが、新しい資格があります。新しい資格情報を確認してください。",
            "This qualification is invalid but a newer one exists: check the new details.",
            needs_staff=True,
        ),
        Outcome(
            "national.not_found",
            "see_staff.not_found",
            "該当する資格がありません（保険証利用登録がない可能性）。資格確認書等で確認してください。",
            "No qualification found (the card may not be registered for insurance use). "
            "Check the qualification certificate or other documents.",
            needs_staff=True,
        ),
        Outcome(
            "national.multiple",
            "see_staff.multiple",
            "複数の資格が該当しました。受付でどの資格を使うか確認してください。",
            "Several qualifications match: ask at the desk which one applies.",
            needs_staff=True,
        ),
    )
}

#: The national validity code (docs/eligibility.md) to the reason code of the answer.
VALIDITY_REASONS = {
    1: "eligible",
    2: "national.invalid",
    3: "national.newer_qualification",
    4: "national.not_found",
    5: "national.multiple",
}

VALIDITY_LABELS = {
    1: ("有効", "valid"),
    2: ("無効", "invalid"),
    3: ("無効・新しい資格あり", "invalid, newer qualification"),
    4: ("該当資格なし", "no qualification found"),
    5: ("複数該当", "several match"),
}


def outcome(reason_code: str) -> Outcome:
    return OUTCOMES[reason_code]
