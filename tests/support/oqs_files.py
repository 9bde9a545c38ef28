"""Reading result files back (``OQSsiquc01res_*.xml``) and comparing them with the national
records they came from: what the result-file tests and the demo's test share.

The reader is independent of the writer: it checks the declaration, the header's
``CharacterCodeIdentifier`` and the bytes against each other, then parses with the standard
library.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DECLARATION = re.compile(rb'^<\?xml version="1\.0" encoding="([^"]+)"\?>\r?\n')
CODEC = {"Shift_JIS": "cp932", "UTF-8": "utf-8"}
IDENTIFIER = {"cp932": "1", "utf-8": "0"}
#: the record's keys as the file writes them, in the file's order (docs/receipt-files.md)
FILE_ORDER = (
    "InsuredCardClassification",
    "InsurerNumber",
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
    "InsurerName",
    "ElderlyRecipientCertificateInfo",
    "LimitApplicationCertificateRelatedInfo",
)


@dataclass(frozen=True)
class ParsedFile:
    codec: str
    header: dict[str, str]
    body: dict[str, str]
    #: each ResultOfQualificationConfirmation: element -> text, or -> dict for nested
    results: list[dict[str, Any]]
    #: element names of each result, in file order
    orders: list[list[str]]


def parse_file(content: bytes) -> ParsedFile:
    match = DECLARATION.match(content)
    assert match, "the file starts with an XML declaration naming its encoding"
    codec = CODEC[match.group(1).decode("ascii")]
    text = content[match.end() :].decode(codec)  # strict: wrong bytes fail here
    root = ET.fromstring(text)
    assert root.tag == "XmlMsg"
    assert [c.tag for c in root] == ["MessageHeader", "MessageBody"]
    header = {c.tag: c.text or "" for c in root[0]}
    assert header["CharacterCodeIdentifier"] == IDENTIFIER[codec]
    body_el = root[1]
    body = {c.tag: c.text or "" for c in body_el if c.tag != "ResultList"}
    results: list[dict[str, Any]] = []
    orders: list[list[str]] = []
    result_list = body_el.find("ResultList")
    for result in result_list if result_list is not None else []:
        assert result.tag == "ResultOfQualificationConfirmation"
        fields: dict[str, Any] = {}
        for element in result:
            if len(element):
                fields[element.tag] = {sub.tag: sub.text or "" for sub in element}
            else:
                fields[element.tag] = element.text or ""
        results.append(fields)
        orders.append([e.tag for e in result])
    return ParsedFile(codec, header, body, results, orders)


def expected_fields(record: dict[str, Any]) -> dict[str, Any]:
    """What the file must hold of one national record: every non-empty field the file has an
    element for (nested objects without their empty members)."""
    expected: dict[str, Any] = {}
    for key in FILE_ORDER:
        value = record.get(key)
        if isinstance(value, dict):
            inner = {k: str(v) for k, v in value.items() if v not in (None, "")}
            if inner:
                expected[key] = inner
        elif value not in (None, ""):
            expected[key] = str(value)
    return expected


def compare_with_record(
    parsed: ParsedFile, validity_code: int, records: list[dict[str, Any]]
) -> None:
    """Every field of the file equals the national record's, in the documented order."""
    assert parsed.body["ProcessingResultStatus"] == "1"
    assert parsed.body["QualificationValidity"] == str(validity_code)
    assert len(parsed.results) == len(records)
    for result, order, record in zip(parsed.results, parsed.orders, records, strict=True):
        expected = expected_fields(record)
        assert result == expected
        assert order == [k for k in FILE_ORDER if k in expected]


def insured_by_certificate(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """``insured.jsonl`` (kiosk/sim/FORMATS.md) by (issuer, serial)."""
    entries = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            cert = item["certificate"]
            entries[(str(cert["issuer"]), str(cert["serial"]))] = item
    return entries
