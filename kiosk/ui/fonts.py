"""Noto Sans CJK, by path, with the right face of the collection for each language.

Debian's ``fonts-noto-cjk`` ships OpenType collections (``.ttc``) holding the JP, KR, SC,
TC and HK faces of the same design; the faces differ in the regional glyph forms of shared
Han characters (and in punctuation placement). ``pygame.font`` (SDL_ttf) opens only the first
face of a collection, so the kiosk uses ``pygame.freetype``, whose ``font_index`` selects the
face: Japanese and the Latin-script languages use the JP face (its Latin covers Vietnamese
stacked diacritics and Portuguese), Korean the KR face, Simplified Chinese the SC face.
"""

from __future__ import annotations

from pathlib import Path

import pygame.freetype

from contract.errors import ConfigError
from kiosk.flow.screens import Language
from kiosk.ui.config import DEFAULT_FONT_BOLD, DEFAULT_FONT_REGULAR

#: Face index in NotoSansCJK-*.ttc: 0 JP, 1 KR, 2 SC, 3 TC, 4 HK (then the Mono faces).
FACE_INDEX: dict[Language, int] = {
    Language.JA: 0,
    Language.EN: 0,
    Language.ZH: 2,
    Language.KO: 1,
    Language.VI: 0,
    Language.PT: 0,
}

#: The family name each face reports, to check the collection is the one expected.
FACE_FAMILY: dict[int, str] = {0: "Noto Sans CJK JP", 1: "Noto Sans CJK KR", 2: "Noto Sans CJK SC"}


class Fonts:
    """The faces the screens use, opened once and shared by every render in one thread."""

    def __init__(
        self, regular: Path = DEFAULT_FONT_REGULAR, bold: Path = DEFAULT_FONT_BOLD
    ) -> None:
        for path, setting in ((regular, "font_regular"), (bold, "font_bold")):
            if not path.is_file():
                raise ConfigError(
                    f"[display] {setting}: {path} is missing (Debian package fonts-noto-cjk)"
                )
        self.regular = regular
        self.bold = bold
        pygame.freetype.init()
        self._faces: dict[tuple[int, bool], pygame.freetype.Font] = {}

    def face(self, language: Language, *, bold: bool = False) -> pygame.freetype.Font:
        index = FACE_INDEX[language]
        key = (index, bold)
        font = self._faces.get(key)
        if font is None:
            path = self.bold if bold else self.regular
            try:
                font = pygame.freetype.Font(str(path), size=24, font_index=index)
            except (OSError, pygame.error) as exc:
                raise ConfigError(f"cannot open face {index} of {path}: {exc}") from exc
            expected = FACE_FAMILY.get(index)
            if expected is not None and not font.name.startswith(expected):
                raise ConfigError(f"{path} face {index} is {font.name!r}, not {expected!r}")
            font.origin = True  # positions are baselines, so lines of any script align
            font.pad = False
            font.antialiased = True
            self._faces[key] = font
        return font
