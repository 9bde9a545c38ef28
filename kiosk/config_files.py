"""Reading the kiosk's configuration: one TOML file and its drop-ins, merged, with provenance.

The kiosk, the uploader and ``kiosk hw test`` all read their settings through
:func:`read_config_files`::

    /etc/onshi-kiosk/kiosk.toml              the file named by --config
    /etc/onshi-kiosk/kiosk.toml.d/*.toml     drop-ins, read in name order (10-..., 50-...)

Tables are merged setting by setting, and a later file wins: a drop-in holding only
``[gpio] amber = 5`` changes that pin and leaves every other setting as it was. A value that
is a table in one file must be a table in every file. Files in the folder that do not end in
``.toml`` or whose names start with ``.`` are ignored (an editor's backup, a package
manager's ``.dpkg-old``). Relative paths in every file are taken from the main file's folder.

The merged document is then checked as one, by the parsers of each section; a
:class:`~contract.errors.ConfigError` they raise is given the name of the file that set the
setting it names (:meth:`ConfigSources.locate`), so a broken drop-in is reported as
``/etc/onshi-kiosk/kiosk.toml.d/50-gpio.toml: [gpio] amber = 1: GPIO 0 and 1 are reserved...``.
Every value remembers the file it came from (:meth:`ConfigSources.origin`), which
``kiosk config --dump`` shows.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from contract.errors import ConfigError

T = TypeVar("T")

Key = tuple[str, ...]

#: ``[section]`` and the setting after it, as every ConfigError message names them.
_SETTING = re.compile(r"\[([A-Za-z0-9_]+)\](?: ([A-Za-z0-9_]+))?")


def drop_in_folder(path: Path) -> Path:
    """Where the drop-ins of ``path`` are: ``kiosk.toml`` -> ``kiosk.toml.d``."""
    return path.with_name(path.name + ".d")


def drop_ins(path: Path) -> list[Path]:
    """The drop-ins of ``path``, in the order they are applied."""
    folder = drop_in_folder(path)
    if not folder.is_dir():
        return []
    return sorted(
        (p for p in folder.iterdir() if p.suffix == ".toml" and not p.name.startswith(".")),
        key=lambda p: p.name,
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: not UTF-8 ({exc.reason})") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def describe(key: Key) -> str:
    """``("gpio", "amber")`` as the messages write it: ``[gpio] amber``."""
    if len(key) == 1:
        return f"[{key[0]}]"
    return f"[{key[0]}] {'.'.join(key[1:])}"


@dataclass
class ConfigSources:
    """The merged document of a file and its drop-ins, and where each value came from."""

    main: Path
    files: list[Path]
    doc: dict[str, Any] = field(default_factory=dict)
    #: every setting (a value that is not a table) to the file that set it last
    origins: dict[Key, Path] = field(default_factory=dict)

    def merge(self, layer: dict[str, Any], source: Path) -> None:
        self._merge(self.doc, layer, source, ())

    def _merge(self, into: dict[str, Any], layer: dict[str, Any], source: Path, at: Key) -> None:
        for name, value in layer.items():
            key = (*at, name)
            before = into.get(name)
            if isinstance(value, dict):
                if before is None:
                    before = into[name] = {}
                elif not isinstance(before, dict):
                    raise ConfigError(
                        f"{source}: {describe(key)} must be a setting, as in "
                        f"{self.origins.get(key, self.main)}, not a table"
                    )
                self._merge(before, value, source, key)
            else:
                if isinstance(before, dict):
                    raise ConfigError(
                        f"{source}: {describe(key)} must be a table, as in "
                        f"{self._table_origin(key)}, not a single value"
                    )
                into[name] = value
                self.origins[key] = source

    def _table_origin(self, key: Key) -> Path:
        for known, path in self.origins.items():
            if known[: len(key)] == key:
                return path
        return self.main

    def origin(self, *key: str) -> Path | None:
        """The file that set this setting last (None: it was not set, a default applies).

        A key is also found at the end of a longer one: ``("voice", "volume")`` is set by
        ``[display.voice] volume`` too.
        """
        if key in self.origins:
            return self.origins[key]
        for known, path in self.origins.items():
            if len(known) > len(key) and known[-len(key) :] == key:
                return path
        return None

    def locate(self, message: str) -> str:
        """``message`` (a ConfigError's) prefixed with the file that set what it names."""
        match = _SETTING.search(message)
        if match is None:
            return message
        section, setting = match.group(1), match.group(2)
        found = self.origin(section, setting) if setting else None
        if found is None:
            found = self._section_origin(section)
        return f"{found}: {message}" if found is not None else message

    def _section_origin(self, section: str) -> Path | None:
        paths = [p for k, p in self.origins.items() if section in k[:-1] or k == (section,)]
        # the last file that touched the section: the newest change is the likeliest culprit
        return max(paths, key=self.files.index) if paths else None

    def checked(self, parse: Callable[[dict[str, Any]], T]) -> T:
        """``parse(doc)``, with a ConfigError naming the file that set the setting."""
        try:
            return parse(self.doc)
        except ConfigError as exc:
            raise ConfigError(self.locate(str(exc))) from exc


def read_config_files(path: Path) -> ConfigSources:
    """``path`` and its drop-ins, read and merged (see the module docstring)."""
    sources = ConfigSources(main=path, files=[path])
    sources.merge(_read_toml(path), path)
    for drop_in in drop_ins(path):
        sources.files.append(drop_in)
        sources.merge(_read_toml(drop_in), drop_in)
    return sources
