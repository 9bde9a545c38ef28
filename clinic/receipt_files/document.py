"""One result file (``OQSsiquc01res_face_*.xml``) from a completed check: names, XML, bytes.

The structure, element order and codes are those of docs/receipt-files.md. Dates are
``YYYYMMDD``; empty optional elements are left out; the XML declaration, the header's
``CharacterCodeIdentifier`` and the bytes always name the same encoding.

外字: in CP932 a character the code page cannot hold is written as 〓 (U+3013, the geta mark
Japanese printing uses for a missing glyph), never dropped and never silently: ``ResultFile``
counts the substitutions per element, and the dashboard shows them to staff beside the record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from clinic.receipt_files.settings import Encoding

PATTERN = "OQSsiquc01res_*.xml"
#: written in place of a character CP932 cannot hold
SUBSTITUTE = "\u3013"
CHARACTER_CODE = {"cp932": "1", "utf-8": "0"}
DECLARED = {"cp932": "Shift_JIS", "utf-8": "UTF-8"}

#: ``ResultOfQualificationConfirmation`` in file order; (element, key in the server's record).
#: None = the server does not hold it (the element is left out).
RESULT_ORDER: tuple[tuple[str, str | None], ...] = (
    ("InsuredCardClassification", "InsuredCardClassification"),
    ("InsurerNumber", "InsurerNumber"),
    ("InsuredCardSymbol", "InsuredCardSymbol"),
    ("InsuredIdentificationNumber", "InsuredIdentificationNumber"),
    ("InsuredBranchNumber", "InsuredBranchNumber"),
    ("PersonalFamilyClassification", "PersonalFamilyClassification"),
    ("InsuredName", None),
    ("Name", "Name"),
    ("NameOfOther", None),
    ("NameKana", "NameKana"),
    ("NameOfOtherKana", None),
    ("Sex1", "Sex1"),
    ("Sex2", None),
    ("Birthdate", "Birthdate"),
    ("Address", "Address"),
    ("PostNumber", "PostNumber"),
    ("QualificationDate", "QualificationDate"),
    ("DisqualificationDate", "DisqualificationDate"),
    ("InsuredCertificateIssuanceDate", None),
    ("InsuredCardValidDate", "InsuredCardValidDate"),
    ("InsuredCardExpirationDate", "InsuredCardExpirationDate"),
    ("InsuredPartialContributionRatio", "InsuredPartialContributionRatio"),
    ("PreschoolClassification", "PreschoolClassification"),
    ("ReasonOfLoss", "ReasonOfLoss"),
    ("InsurerName", "InsurerName"),
    ("ElderlyRecipientCertificateInfo", "ElderlyRecipientCertificateInfo"),
    ("LimitApplicationCertificateRelatedConsFlg", None),
    ("LimitApplicationCertificateRelatedConsTime", None),
    ("LimitApplicationCertificateRelatedInfo", "LimitApplicationCertificateRelatedInfo"),
    ("SpecificDiseasesCertificateList", None),
    ("ReferenceNumber", None),
)
NESTED_ORDER: dict[str, tuple[str, ...]] = {
    "ElderlyRecipientCertificateInfo": (
        "ElderlyRecipientCertificateDate",
        "ElderlyRecipientValidStartDate",
        "ElderlyRecipientValidEndDate",
        "ElderlyRecipientContributionRatio",
    ),
    "LimitApplicationCertificateRelatedInfo": (
        "LimitApplicationCertificateClassification",
        "LimitApplicationCertificateClassificationFlag",
        "LimitApplicationCertificateDate",
        "LimitApplicationCertificateValidStartDate",
        "LimitApplicationCertificateValidEndDate",
        "LimitApplicationCertificateLongTermDate",
    ),
}


@dataclass(frozen=True)
class CompletedCheck:
    """What a result file says: one check the national system answered."""

    verification_id: str
    #: when the national system answered, in the clinic's time zone
    answered_at: dt.datetime
    validity_code: int
    records: Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class ResultFile:
    name: str
    content: bytes
    #: element -> characters written as 〓 (CP932 only)
    substituted: dict[str, int] = field(default_factory=dict)


def file_name(check: CompletedCheck) -> str:
    """``OQSsiquc01res_face_<verification id>_<YYYYMMDDHHMMSS>.xml``: one name per check."""
    stamp = check.answered_at.strftime("%Y%m%d%H%M%S")
    return f"OQSsiquc01res_face_{check.verification_id}_{stamp}.xml"


class _Text:
    """Element text, encodable in the target encoding, with the substitutions counted."""

    def __init__(self, encoding: Encoding) -> None:
        self.encoding = encoding
        self.substituted: dict[str, int] = {}

    def __call__(self, element: str, value: object) -> str:
        text = str(value)
        if self.encoding == "cp932":
            kept = []
            for char in text:
                try:
                    char.encode("cp932")
                    kept.append(char)
                except UnicodeEncodeError:
                    kept.append(SUBSTITUTE)
                    self.substituted[element] = self.substituted.get(element, 0) + 1
            text = "".join(kept)
        return escape(text)


def _present(value: object) -> bool:
    return value is not None and value not in ("", {}, [])


def build(check: CompletedCheck, institution_code: str, encoding: Encoding) -> ResultFile:
    """The file for ``check``: its name and its bytes in ``encoding``."""
    text = _Text(encoding)
    lines = [
        f'<?xml version="1.0" encoding="{DECLARED[encoding]}"?>',
        "<XmlMsg>",
        "<MessageHeader>",
        f"<ProcessExecutionTime>{check.answered_at:%Y%m%d%H%M%S}</ProcessExecutionTime>",
        f"<QualificationConfirmationDate>{check.answered_at:%Y%m%d}"
        "</QualificationConfirmationDate>",
        f"<MedicalInstitutionCode>{text('MedicalInstitutionCode', institution_code)}"
        "</MedicalInstitutionCode>",
        "<ReferenceClassification>1</ReferenceClassification>",
        "<SegmentOfResult>1</SegmentOfResult>",
        f"<CharacterCodeIdentifier>{CHARACTER_CODE[encoding]}</CharacterCodeIdentifier>",
        "</MessageHeader>",
        "<MessageBody>",
        "<ProcessingResultStatus>1</ProcessingResultStatus>",
        f"<QualificationValidity>{check.validity_code}</QualificationValidity>",
    ]
    if check.records:
        lines.append("<ResultList>")
        for record in check.records:
            lines.append("<ResultOfQualificationConfirmation>")
            for element, key in RESULT_ORDER:
                value = record.get(key) if key is not None else None
                if not _present(value):
                    continue
                if element in NESTED_ORDER:
                    assert isinstance(value, Mapping)
                    inner = [
                        f"<{sub}>{text(sub, value[sub])}</{sub}>"
                        for sub in NESTED_ORDER[element]
                        if _present(value.get(sub))
                    ]
                    if inner:
                        lines.append(f"<{element}>{''.join(inner)}</{element}>")
                else:
                    lines.append(f"<{element}>{text(element, value)}</{element}>")
            lines.append("</ResultOfQualificationConfirmation>")
        lines.append("</ResultList>")
    lines += ["</MessageBody>", "</XmlMsg>", ""]
    content = "\r\n".join(lines).encode(encoding)
    return ResultFile(file_name(check), content, text.substituted)
