"""Schema versions and migrations: which tables the server needs, and bringing a database
up to them.

Each component owns its tables as a ``clinic.storage.Schema``: a name and its numbered steps
(``Migration``), applied in order and recorded in ``schema_migrations`` (component, version).
``clinic-server serve`` applies the missing steps when it starts (one instance at a time on
PostgreSQL: an advisory lock), and ``clinic-server db migrate`` does it by hand, for example
before starting several instances of a new release; ``clinic-server db status`` shows where
a database stands. A database that a newer release migrated further than this one knows is
refused (``storage.refuse_downgrade``): go back to that release, or restore the backup made
before the upgrade.

Adding a table (or a column, or an index) is one appended step, never an edit of a released
one::

    CLINIC_SCHEMA = Schema("clinic", (
        Migration(1, ...),                                   # released: never edited
        Migration.portable(2, "CREATE TABLE staff_calls (...)"),   # the new step
    ))

``Migration.portable`` when the SQL runs on both back-ends, ``Migration(n, sqlite_sql,
postgresql_sql)`` when it differs. Two branches that both append a step to one component take
the next numbers in the order they are merged. A feature with tables of its own may instead
have a component of its own (a ``Schema`` with its own name, listed in ``server_schemas``),
which keeps its numbering apart. tests/clinic/test_migrations.py upgrades a database made
with the steps of the previous release and checks that every record survives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clinic.button import BUTTON_SCHEMA
from clinic.crl_store import CRL_SCHEMA
from clinic.devices import REPLAY_SCHEMA
from clinic.extensions import Extension
from clinic.instances import INSTANCES_SCHEMA
from clinic.login_throttle import LOGIN_THROTTLE_SCHEMA
from clinic.schema import CLINIC_SCHEMA, RECEIPT_FILES_SCHEMA, STAFF_CALLS_SCHEMA
from clinic.storage import Database, Schema


def server_schemas(extensions: Sequence[Extension] = ()) -> list[Schema]:
    """Every component's schema the server runs with, its extensions' included."""
    return [
        CLINIC_SCHEMA,
        REPLAY_SCHEMA,
        LOGIN_THROTTLE_SCHEMA,
        BUTTON_SCHEMA,
        INSTANCES_SCHEMA,
        RECEIPT_FILES_SCHEMA,
        STAFF_CALLS_SCHEMA,
        CRL_SCHEMA,
        *(e.schema for e in extensions if e.schema is not None),
    ]


@dataclass(frozen=True)
class ComponentState:
    component: str
    applied: int
    known: int

    @property
    def state(self) -> str:
        if self.applied == self.known:
            return "current"
        return "to migrate" if self.applied < self.known else "NEWER than this release"


def schema_status(db: Database, schemas: Sequence[Schema]) -> list[ComponentState]:
    """Each component's applied and known versions."""
    applied = db.applied_versions()
    return [
        ComponentState(
            s.component,
            applied.get(s.component, 0),
            max((m.version for m in s.migrations), default=0),
        )
        for s in schemas
    ]
