"""The result file's bytes: every record of the population, both encodings, read back with
the standard library and compared field by field with the national record; 外字; settings."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from clinic.config import config_from
from clinic.receipt_files.document import SUBSTITUTE, CompletedCheck, build, file_name
from clinic.receipt_files.settings import receipt_settings
from contract.errors import ConfigError
from kiosk.sim.population import Population
from tests.support.oqs_files import compare_with_record, parse_file

JST = ZoneInfo("Asia/Tokyo")
CODE = "1312345678"
AT = dt.datetime(2026, 12, 1, 9, 30, 5, tzinfo=JST)


def _entries(population: Population) -> list[dict[str, object]]:
    lines = population.insured_path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.mark.parametrize("encoding", ["cp932", "utf-8"])
def test_every_national_record_round_trips(population: Population, encoding: str) -> None:
    entries = _entries(population)
    validity_codes = {e["validity_code"] for e in entries}
    assert validity_codes >= {1, 2, 3, 4, 5}, "the population covers every validity code"
    for entry in entries:
        records = entry["records"]
        assert isinstance(records, list)
        check = CompletedCheck("ab" * 16, AT, int(str(entry["validity_code"])), records)
        result = build(check, CODE, encoding)  # type: ignore[arg-type]
        assert result.substituted == {}
        parsed = parse_file(result.content)
        assert parsed.codec == encoding
        assert parsed.header == {
            "ProcessExecutionTime": "20261201093005",
            "QualificationConfirmationDate": "20261201",
            "MedicalInstitutionCode": CODE,
            "ReferenceClassification": "1",
            "SegmentOfResult": "1",
            "CharacterCodeIdentifier": "1" if encoding == "cp932" else "0",
        }
        compare_with_record(parsed, int(str(entry["validity_code"])), records)


def test_name_and_encoding_are_one_per_check() -> None:
    check = CompletedCheck("0f" * 16, AT, 4, [])
    assert file_name(check) == f"OQSsiquc01res_face_{'0f' * 16}_20261201093005.xml"
    cp932 = build(check, CODE, "cp932").content
    assert cp932.startswith(b'<?xml version="1.0" encoding="Shift_JIS"?>')
    assert build(check, CODE, "utf-8").content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert b"<ResultList>" not in cp932  # validity 4: no record, no empty list


def _record(name: str, address: str) -> dict[str, object]:
    return {
        "InsuredCardClassification": "01",
        "InsurerNumber": "06130016",
        "InsuredCardSymbol": None,
        "InsuredIdentificationNumber": "12",
        "Name": name,
        "NameKana": "ﾖｼﾀﾞ ﾀﾛｳ",
        "Sex1": "1",
        "Birthdate": "19800101",
        "Address": address,
        "InsuredPartialContributionRatio": "030",
        "PublicExpenseInfo": [{"PublicExpenseNumber": "12345678"}],
    }


def test_gaiji_becomes_geta_in_cp932_and_is_counted() -> None:
    record = _record("𠮷田 太郎", "東京都 髙島町 1-2 <A&B>")
    check = CompletedCheck("1a" * 16, AT, 1, [record])
    result = build(check, CODE, "cp932")
    assert result.substituted == {"Name": 1}
    parsed = parse_file(result.content)
    assert parsed.results[0]["Name"] == f"{SUBSTITUTE}田 太郎"
    # 髙 (IBM extension) and half-width kana are CP932; markup characters are escaped
    assert parsed.results[0]["Address"] == "東京都 髙島町 1-2 <A&B>"
    assert parsed.results[0]["NameKana"] == "ﾖｼﾀﾞ ﾀﾛｳ"
    assert "InsuredCardSymbol" not in parsed.results[0]  # empty: left out
    utf8 = build(check, CODE, "utf-8")
    assert utf8.substituted == {}
    assert parse_file(utf8.content).results[0]["Name"] == "𠮷田 太郎"


def _toml(tmp_path: Path, text: str) -> Path:
    (tmp_path / "clinic.toml").write_text(text, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[receipt_files]\nfolder = "/srv/oqs"\n', "medical_institution_code is not"),
        (
            'medical_institution_code = "1312345678"\n[receipt_files]\nfolder = "oqs"\n',
            "must be an absolute path",
        ),
        (
            'medical_institution_code = "1312345678"\n[receipt_files]\nencoding = "euc-jp"\n',
            "encoding 'euc-jp' is not supported",
        ),
        ('medical_institution_code = "13123"\n', "is not a 医療機関コード"),
        ('medical_institution_code = "9912345678"\n', "is not a 医療機関コード"),
        ("[receipt_files]\nfolders = 1\n", "unknown setting(s) in [receipt_files]: folders"),
        ('receipt_files = "x"\n', "must be a table"),
        ("[receipt_files]\nfolder = 3\n", "folder must be a non-empty string"),
    ],
)
def test_broken_settings_are_refused_with_the_reason(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from(_toml(tmp_path, text), {}).receipt_settings  # noqa: B018


def test_settings_from_the_file(tmp_path: Path) -> None:
    text = (
        'medical_institution_code = "1312345678"\n'
        '[receipt_files]\nfolder = "/srv/oqs/face"\nencoding = "Shift_JIS"\n'
    )
    settings = config_from(_toml(tmp_path, text), {}).receipt_settings
    assert settings.folder == Path("/srv/oqs/face")
    assert settings.encoding == "cp932"
    assert settings.medical_institution_code == "1312345678"
    assert receipt_settings(None, "utf8", None).encoding == "utf-8"
    assert not receipt_settings(None, "cp932", None).enabled
