"""Plug-ins of the clinic server: their own tables and routes, mounted in one line.

A module that extends the server exposes one object::

    # clinic/ingest.py
    EXTENSION = Extension(
        name="ingest",
        schema=Schema("ingest", (Migration.portable(1, "CREATE TABLE ..."),)),
        kiosk_router=router,        # mounted under /api/v1, behind the device gate
    )

and is named in ``BUILTIN_EXTENSIONS`` below (or in ``extensions = [...]`` of clinic.toml).
The server then migrates the extension's schema with its own (on SQLite and PostgreSQL
alike: give per-back-end DDL with ``Migration(version, sqlite=..., postgresql=...)``) and
includes its routers. Route handlers reach the shared objects with
``clinic.kiosk_api.context_of(request)`` (``.db``, ``.run(...)`` for blocking work,
``.clock``, ``.extras``) and the calling kiosk with ``clinic.kiosk_api.current_device``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import APIRouter

from clinic.storage import Schema
from contract.errors import ConfigError

if TYPE_CHECKING:
    from clinic.context import ClinicContext

#: Modules loaded by every server. The kiosk outbox's ingest endpoint adds "clinic.ingest".
BUILTIN_EXTENSIONS: tuple[str, ...] = ("clinic.ingest",)


@dataclass(frozen=True)
class Extension:
    name: str
    schema: Schema | None = None
    #: Routes for kiosks: mounted under ``/api/v1``, device-authenticated like the rest.
    kiosk_router: APIRouter | None = None
    #: Called once the shared context exists (e.g. to put objects into ``context.extras``).
    on_start: Callable[[ClinicContext], None] | None = None


def load_extensions(names: Iterable[str]) -> list[Extension]:
    extensions: list[Extension] = []
    seen: set[str] = set()
    for module_name in (*BUILTIN_EXTENSIONS, *names):
        if module_name in seen:
            continue
        seen.add(module_name)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"cannot load extension {module_name}: {exc}") from exc
        extension = getattr(module, "EXTENSION", None)
        if not isinstance(extension, Extension):
            raise ConfigError(f"{module_name} has no EXTENSION = Extension(...)")
        extensions.append(extension)
    return extensions
