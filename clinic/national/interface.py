"""The boundary to the national eligibility system: the connector, its answer, its error.

The national system offers no public API to third-party devices (docs/background.md), so
the clinic server reaches it through one small interface, ``NationalConnector``::

    class NationalConnector(Protocol):
        def lookup(self, issuer: str, serial: int) -> NationalAnswer: ...

``issuer`` is the card certificate's issuer as an RFC 4514 string, ``serial`` its serial
number: the national side maps the user-authentication certificate to the insured person.
A connector raises ``NationalUnavailable`` when it cannot get an answer (outage, timeout);
the server then tells staff how to proceed without the system. It is called from a worker
thread, so a blocking implementation is fine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from clinic.errors import NationalUnavailable

__all__ = [
    "RECORD_FIELDS",
    "NationalAnswer",
    "NationalConnector",
    "NationalUnavailable",
    "is_blocking",
]

#: Field names of one eligibility record (docs/eligibility.md), in receipt-software order.
RECORD_FIELDS = (
    "InsuredCardClassification",
    "InsurerNumber",
    "InsurerName",
    "InsuredCardSymbol",
    "InsuredIdentificationNumber",
    "InsuredBranchNumber",
    "PersonalFamilyClassification",
    "Name",
    "NameKana",
    "Sex1",
    "Birthdate",
    "Address",
    "PostNumber",
    "QualificationDate",
    "DisqualificationDate",
    "InsuredCardValidDate",
    "InsuredCardExpirationDate",
    "InsuredPartialContributionRatio",
    "PreschoolClassification",
    "ReasonOfLoss",
    "ElderlyRecipientCertificateInfo",
    "LimitApplicationCertificateRelatedInfo",
    "PublicExpenseInfo",
)


@dataclass(frozen=True)
class NationalAnswer:
    """What the national system says about one certificate."""

    #: 1 valid, 2 invalid, 3 invalid with a newer qualification, 4 none found, 5 several.
    validity_code: int
    #: Eligibility records in the vocabulary of docs/eligibility.md (none for code 4).
    records: tuple[dict[str, Any], ...] = ()
    #: The national side refused the certificate as revoked.
    revoked: bool = False

    def __post_init__(self) -> None:
        if self.validity_code not in (1, 2, 3, 4, 5):
            raise ValueError(f"validity code {self.validity_code} is not 1-5")


class NationalConnector(Protocol):
    """Where a real, authorised connector plugs in."""

    def lookup(self, issuer: str, serial: int) -> NationalAnswer: ...


def is_blocking(connector: NationalConnector) -> bool:
    """Whether ``lookup`` may block (network, sleeps): then it runs on a worker thread.

    A connector says it never blocks with a ``blocking`` attribute that is False; any other
    connector is assumed to block.
    """
    return bool(getattr(connector, "blocking", True))
