"""The receipt-file settings: where files go, in which encoding, for which institution.

In ``clinic.toml``::

    medical_institution_code = "1312345678"   # the clinic's 10-digit 医療機関コード

    [receipt_files]
    folder = "/srv/oqs/face"     # a local folder or a mounted share; no files without it
    encoding = "cp932"           # or "utf-8"

Every value is checked once, at start; a broken one is a ``ConfigError`` that names it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from contract.errors import ConfigError

Encoding = Literal["cp932", "utf-8"]
ENCODINGS: tuple[Encoding, ...] = ("cp932", "utf-8")
#: prefecture (2), point table (1: 医科, 3: 歯科, 4: 調剤), institution code (7)
_INSTITUTION_CODE = re.compile(r"^(0[1-9]|[1-3]\d|4[0-7])[134]\d{7}$")
_KEYS = {"folder", "encoding"}


@dataclass(frozen=True)
class ReceiptSettings:
    """Where and how result files are written; ``folder`` None = no files."""

    folder: Path | None = None
    encoding: Encoding = "cp932"
    medical_institution_code: str | None = None

    @property
    def enabled(self) -> bool:
        return self.folder is not None


def parse_section(raw: object, where: str) -> dict[str, Any]:
    """The ``[receipt_files]`` table of clinic.toml as ``ServerConfig`` fields."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [receipt_files] must be a table (folder, encoding)")
    unknown = set(raw) - _KEYS
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting(s) in [receipt_files]: {', '.join(sorted(unknown))}"
            " (known: folder, encoding)"
        )
    fields: dict[str, Any] = {}
    for key in ("folder", "encoding"):
        if key in raw:
            if not isinstance(raw[key], str) or not raw[key]:
                raise ConfigError(f"{where}: [receipt_files] {key} must be a non-empty string")
            fields[f"receipt_{key}"] = raw[key]
    return fields


def receipt_settings(
    folder: str | None, encoding: str, medical_institution_code: str | None
) -> ReceiptSettings:
    """Checked settings; a ``ConfigError`` that says which value is wrong and why."""
    normalised = encoding.strip().lower().replace("_", "-")
    aliases = {"shift-jis": "cp932", "sjis": "cp932", "windows-31j": "cp932", "utf8": "utf-8"}
    normalised = aliases.get(normalised, normalised)
    if normalised not in ENCODINGS:
        raise ConfigError(
            f'[receipt_files] encoding {encoding!r} is not supported: use "cp932"'
            ' (Shift_JIS, the default receipt software expects) or "utf-8"'
        )
    if medical_institution_code is not None and not _INSTITUTION_CODE.match(
        medical_institution_code
    ):
        raise ConfigError(
            f"medical_institution_code {medical_institution_code!r} is not a 医療機関コード:"
            " 10 digits, prefecture 01-47, point table 1, 3 or 4, then 7 digits"
        )
    if folder is None:
        return ReceiptSettings(None, normalised, medical_institution_code)
    path = Path(folder)
    if not path.is_absolute():
        raise ConfigError(f"[receipt_files] folder {folder!r} must be an absolute path")
    if medical_institution_code is None:
        raise ConfigError(
            "[receipt_files] folder is set but medical_institution_code is not: result files"
            " carry the clinic's 10-digit 医療機関コード"
        )
    return ReceiptSettings(path, normalised, medical_institution_code)
