"""Message catalogues: every word the patient reads or hears, one TOML file per language.

The files live in ``kiosk/ui/messages/<language>.toml`` (package data). Tables nest, so
``[notice.revoked] title = "..."`` is the key ``notice.revoked.title``. A key that depends
on a count (``pin.tries_left``) has one entry per plural category of the language, as CLDR
names them (``pin.tries_left.one``, ``pin.tries_left.other``); Japanese, Chinese, Korean and
Vietnamese have only ``other``.

Values are ``str.format`` templates; the placeholders are ``{n}`` (a count) and ``{date}`` (a
day, written as the language writes dates: :func:`format_date`). The tests
hold every catalogue to the same keys, the same placeholders and real translations.
"""

from __future__ import annotations

import logging
import string
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from contract.errors import ConfigError
from kiosk.flow.screens import Language

log = logging.getLogger(__name__)

#: CLDR plural categories used by each language, for the counts the kiosk shows (0..9).
PLURAL_CATEGORIES: dict[Language, tuple[str, ...]] = {
    Language.JA: ("other",),
    Language.EN: ("one", "other"),
    Language.ZH: ("other",),
    Language.KO: ("other",),
    Language.VI: ("other",),
    Language.PT: ("one", "other"),
}

#: Keys that take a count and so have one entry per plural category.
PLURAL_KEYS = frozenset(
    {"pin.tries_left", "pin.wrong", "pin_unavailable.at_floor", "screen.result_ok.title_copay"}
)

#: The placeholders a template may hold.
PLACEHOLDERS = frozenset({"n", "date"})

#: How each language writes a day.
_DATE_FORMATS: dict[Language, str] = {
    Language.JA: "{y}年{m}月{d}日",
    Language.EN: "{d} {month} {y}",
    Language.ZH: "{y}年{m}月{d}日",
    Language.KO: "{y}년 {m}월 {d}일",
    Language.VI: "{d}/{m}/{y}",
    Language.PT: "{d:02d}/{m:02d}/{y}",
}
_MONTHS_EN = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def format_date(language: Language, day: date) -> str:
    """``day`` as ``language`` writes it: 2027年3月31日, 31 March 2027, 31/03/2027..."""
    return _DATE_FORMATS[language].format(
        y=day.year, m=day.month, d=day.day, month=_MONTHS_EN[day.month - 1]
    )


def plural_category(language: Language, n: int) -> str:
    """The CLDR category of the whole number ``n`` in ``language``."""
    if language is Language.EN:
        return "one" if n == 1 else "other"
    if language is Language.PT:
        # CLDR "pt" (Brazilian Portuguese, the Portuguese most often spoken in Japan): 0 and 1
        return "one" if n in (0, 1) else "other"
    return "other"


def placeholders(template: str) -> frozenset[str]:
    """The ``{name}`` fields in a template."""
    return frozenset(
        name for _, name, _, _ in string.Formatter().parse(template) if name is not None
    )


@dataclass(frozen=True)
class Catalog:
    """The messages of one language."""

    language: Language
    messages: Mapping[str, str]

    def has(self, key: str) -> bool:
        return key in self.messages

    def text(self, key: str, n: int | None = None, on: date | None = None) -> str:
        """The message ``key``; with ``n``, the plural form for ``n`` with ``{n}`` filled in;
        with ``on``, ``{date}`` filled in."""
        full = key if n is None else f"{key}.{plural_category(self.language, n)}"
        template = self.messages.get(full)
        if template is None:
            # The tests forbid this; on a unit it shows the key rather than crash the screen.
            log.error("message %s is missing in %s", full, self.language.value)
            return full
        if on is not None:
            return template.format(n=n, date=format_date(self.language, on))
        return template.format(n=n) if n is not None else template

    def __iter__(self) -> Iterator[str]:
        return iter(self.messages)


def _flatten(table: Mapping[str, Any], prefix: str, into: dict[str, str], source: str) -> None:
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping):
            _flatten(value, f"{key}.", into, source)
        elif isinstance(value, str):
            into[key] = value
        else:
            raise ConfigError(f"{source}: {key} must be a string")


def parse_catalog(language: Language, text: str, source: str = "<catalogue>") -> Catalog:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    messages: dict[str, str] = {}
    _flatten(doc, "", messages, source)
    return Catalog(language, messages)


def catalog_file(language: Language) -> resources.abc.Traversable:
    return resources.files("kiosk.ui").joinpath("messages", f"{language.value}.toml")


def load_catalog(language: Language) -> Catalog:
    path = catalog_file(language)
    return parse_catalog(language, path.read_text(encoding="utf-8"), f"messages/{path.name}")


@cache
def default_catalogs() -> Mapping[Language, Catalog]:
    """Every language's catalogue from the package, loaded once."""
    return {language: load_catalog(language) for language in Language}


def expand_plurals(keys: frozenset[str], language: Language) -> frozenset[str]:
    """The catalogue keys ``language`` must have for the base ``keys``."""
    out: set[str] = set()
    for key in keys:
        if key in PLURAL_KEYS:
            out.update(f"{key}.{category}" for category in PLURAL_CATEGORIES[language])
        else:
            out.add(key)
    return frozenset(out)
