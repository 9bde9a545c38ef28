"""What each card of a synthetic population is for: its outcome at the kiosk.

An :class:`Outcome` names the route the kiosk must take with the card (``ok``, ``staff`` or
``error``), the insurance behind it, the state of its PIN and certificate, and the kind of
token; :data:`OUTCOMES` lists every one, in the order a population cycles through them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta, timezone
from typing import Literal

from kiosk.sim.profile import CardKind

JST = timezone(timedelta(hours=9), "JST")
#: An expired user-authentication certificate still serves eligibility for three months.
GRACE_DAYS = 92

Route = Literal["ok", "staff", "error"]
PinState = Literal["normal", "locked", "one-left", "none", "verified-on-phone"]
CertificateState = Literal["valid", "revoked", "expired-in-grace", "expired-past-grace"]


@dataclass(frozen=True)
class Outcome:
    """One situation the population covers: the card, the certificate and the insurance."""

    name: str
    route: Route
    """``ok``: the kiosk completes the check; ``staff``: it hands the patient to reception
    (eligibility needs a person, or the PIN cannot be used); ``error``: the card cannot be
    used for the check at all (certificate refused, not a My Number card)."""
    insurance: str
    """Which records the national system holds (a key of ``_INSURANCE``)."""
    kind: CardKind = CardKind.MYNUMBER
    pin: PinState = "normal"
    certificate: CertificateState = "valid"

    @property
    def validity_code(self) -> int | None:
        """What the national system answers for this card's certificate (None: no certificate)."""
        if not self.kind.has_user_authentication:
            return None
        return INSURANCE_PLANS[self.insurance].validity_code

    @property
    def expected_validity_code(self) -> int | None:
        """What the clinic ends up with: None when the certificate is refused or absent."""
        if self.certificate in ("revoked", "expired-past-grace"):
            return None
        return self.validity_code

    @property
    def features(self) -> tuple[str, ...]:
        card: list[str] = []
        if self.kind is not CardKind.MYNUMBER:
            card.append(str(self.kind))
        if self.pin != "normal":
            card.append(
                {
                    "locked": "pin-locked",
                    "one-left": "pin-one-try-left",
                    "verified-on-phone": "pin-verified-on-phone",
                }.get(self.pin, "no-pin")
            )
        if self.certificate != "valid":
            card.append(f"certificate-{self.certificate}")
        if not self.kind.has_user_authentication:
            return tuple(card)
        return INSURANCE_PLANS[self.insurance].features + tuple(card)


@dataclass(frozen=True)
class InsurancePlan:
    validity_code: int
    ages: tuple[int, int]
    features: tuple[str, ...]


INSURANCE_PLANS = {
    "employee": InsurancePlan(1, (22, 64), ("employee-insurance", "insured-person")),
    "family": InsurancePlan(1, (20, 64), ("employee-insurance", "family-member")),
    "national": InsurancePlan(1, (20, 69), ("national-health-insurance",)),
    "late-elderly": InsurancePlan(1, (75, 94), ("late-stage-elderly",)),
    "elderly-20": InsurancePlan(1, (71, 74), ("elderly-recipient-20",)),
    "elderly-30-limit": InsurancePlan(1, (71, 74), ("elderly-recipient-30", "limit-application")),
    "preschool-public-expense": InsurancePlan(
        1, (1, 5), ("preschool", "family-member", "public-expense")
    ),
    "disqualified": InsurancePlan(2, (22, 64), ("disqualified",)),
    "newer": InsurancePlan(3, (22, 64), ("newer-qualification",)),
    "none": InsurancePlan(4, (20, 69), ("not-registered",)),
    "several": InsurancePlan(5, (22, 64), ("several-matches",)),
}

OUTCOMES: tuple[Outcome, ...] = (
    Outcome("valid-employee", "ok", "employee"),
    Outcome("valid-family", "ok", "family"),
    Outcome("valid-national", "ok", "national"),
    Outcome("valid-late-elderly", "ok", "late-elderly"),
    Outcome("valid-elderly-20", "ok", "elderly-20"),
    # 限度額適用認定証 for ages 70-74 exists exactly for 現役並み income (30 %) and low income
    Outcome("valid-elderly-30-limit", "ok", "elderly-30-limit"),
    # nearly every preschool child also has the municipal child medical subsidy (公費)
    Outcome("valid-preschool-public-expense", "ok", "preschool-public-expense"),
    Outcome("disqualified", "staff", "disqualified"),
    Outcome("invalid-newer-qualification", "staff", "newer"),
    Outcome("not-registered", "staff", "none"),
    Outcome("several-matches", "staff", "several"),
    Outcome("revoked-certificate", "error", "employee", certificate="revoked"),
    Outcome("expired-in-grace", "ok", "national", certificate="expired-in-grace"),
    Outcome("expired-past-grace", "error", "employee", certificate="expired-past-grace"),
    Outcome("pin-locked", "staff", "late-elderly", pin="locked"),
    Outcome("pin-one-try-left", "staff", "national", pin="one-left"),
    Outcome("android", "ok", "employee", kind=CardKind.ANDROID),
    # an iPhone that does not report the PIN verified after Face ID: the PIN pad (or staff)
    Outcome("iphone", "ok", "family", kind=CardKind.IPHONE),
    Outcome("face-auth", "staff", "late-elderly", pin="none"),
    Outcome("non-jpki", "error", "none", kind=CardKind.NON_JPKI),
    # an iPhone that answers the empty VERIFY with 9000 after Face ID: no PIN pad
    Outcome("iphone-face-id", "ok", "employee", kind=CardKind.IPHONE, pin="verified-on-phone"),
)
"""Every outcome, in the order the population cycles through them."""
