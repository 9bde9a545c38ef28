"""Schema versions: a database made by the previous release is upgraded with every record
kept, ``clinic-server db migrate``/``status`` by hand, and a downgrade is refused.

The previous release's database is made here by the schema code itself: the server's real
start-up (``init``, ``build_context``) with every component's steps except those this release
appends (``APPENDED``), then filled through the real services - never a committed file.
"""

from __future__ import annotations

import contextlib
import json
import secrets

import pytest

import clinic.server
from clinic.backup import record_counts
from clinic.cli import main
from clinic.config import config_from
from clinic.errors import StorageError
from clinic.extensions import load_extensions
from clinic.migrations import server_schemas
from clinic.server import build_context, open_database
from clinic.storage import Database, Migration, Schema
from tests.support.clinic import fresh_database, sign_for

#: The steps this release adds: (component, version), and the tables they make.
APPENDED = {("instances", 1), ("receipt_files", 1), ("staff_calls", 1)}
NEW_TABLES = {"server_instances", "receipt_files", "manual_confirmations", "staff_calls"}


def previous_release(extensions=()) -> list[Schema]:
    """The schemas as the previous release had them."""
    older = []
    for schema in server_schemas(extensions):
        steps = tuple(m for m in schema.migrations if (schema.component, m.version) not in APPENDED)
        if steps:
            older.append(Schema(schema.component, steps))
    return older


@pytest.fixture
def old_release(monkeypatch):
    """While active, the server's start-up migrates with the previous release's steps."""
    monkeypatch.setattr(clinic.server, "server_schemas", previous_release)
    yield monkeypatch
    monkeypatch.undo()


def _init(base, population, tmp_path) -> None:
    password = tmp_path / "password"
    password.write_text(secrets.token_urlsafe(16) + "\n")
    code = main(
        [
            *base,
            "init",
            "--jpki-ca",
            str(population.ca_directory / "jpki-ca.pem"),
            "--jpki-crl",
            str(population.crl_path),
            "--password-file",
            str(password),
        ]
    )
    assert code == 0


def _base(tmp_path, database) -> list[str]:
    return ["--data-dir", str(tmp_path / "data")] + (["--database", database] if database else [])


def test_a_database_of_the_previous_release_is_upgraded_and_keeps_every_record(
    backend, population, tmp_path, old_release
):
    with fresh_database(backend) as database:
        _init(_base(tmp_path, database), population, tmp_path)
        config = config_from(tmp_path / "data", {"database": database}).validated()
        # the previous release at work: a kiosk registered, three checks recorded
        context = build_context(config)
        try:
            assert "instances" not in context.db.applied_versions()
            from clinic.pki import CertificateAuthority

            ca = CertificateAuthority.load(config.paths.device_ca, config.paths.device_ca_key)
            context.devices.issue(ca, "upgrade-kiosk")
            profile = population.card("valid-national").load_profile()
            assert profile.user_auth_certificate is not None
            made = set()
            for _ in range(3):
                challenge = context.service.issue_challenge("upgrade-kiosk")
                verification = context.service.verify(
                    "upgrade-kiosk",
                    challenge.nonce,
                    "pin",
                    profile.user_auth_certificate,
                    sign_for(profile, challenge.nonce, "upgrade-kiosk", "pin"),
                )
                made.add(verification.id)
            before = record_counts(context.db)
        finally:
            context.close()
        assert before["verifications"] == 3
        assert not {
            "server_instances",
            "receipt_files",
            "manual_confirmations",
            "staff_calls",
        } & set(before)

        old_release.undo()  # this release
        db = open_database(config)  # what `serve` does when it starts
        try:
            assert db.applied_versions()["instances"] == 1
            after = record_counts(db)
            with db.transaction() as tx:
                ids = {r["id"] for r in tx.all("SELECT id FROM verifications")}
        finally:
            db.close()
        assert ids == made
        for new_table in (
            "server_instances",
            "receipt_files",
            "manual_confirmations",
            "staff_calls",
        ):
            assert after.pop(new_table) == 0
        assert after.pop("schema_migrations") == before.pop("schema_migrations") + len(APPENDED)
        assert after == before, "every record of the old database is still there"


def test_db_migrate_and_status_by_hand_then_a_refused_downgrade(
    backend, population, tmp_path, old_release, capsys
):
    with fresh_database(backend) as database:
        base = _base(tmp_path, database)
        _init(base, population, tmp_path)
        old_release.undo()
        config = config_from(tmp_path / "data", {"database": database})

        capsys.readouterr()
        assert main([*base, "db", "status"]) == 1, "a step is missing"
        assert "instances" in capsys.readouterr().out
        assert main([*base, "db", "migrate"]) == 0
        assert "applied instances 1" in capsys.readouterr().out
        assert main([*base, "db", "migrate"]) == 0
        assert "the database is current" in capsys.readouterr().out
        assert main([*base, "db", "status", "--json"]) == 0
        states = json.loads(capsys.readouterr().out)
        schemas = server_schemas(load_extensions(config.extensions))
        assert {s["component"] for s in states} == {s.component for s in schemas}
        assert all(s["state"] == "current" for s in states)

        # a newer release appended a step this one does not know
        newer = [
            Schema(
                s.component,
                (
                    *s.migrations,
                    Migration.portable(
                        len(s.migrations) + 1, "CREATE TABLE from_the_future (id INTEGER)"
                    ),
                ),
            )
            if s.component == "clinic"
            else s
            for s in schemas
        ]
        with contextlib.closing(Database.open(config.database_url, pool_size=1)) as db:
            db.migrate(newer)
        with pytest.raises(StorageError, match="newer release migrated it"):
            open_database(config)
        capsys.readouterr()
        assert main([*base, "db", "migrate"]) == 1
        assert "a downgrade is refused" in capsys.readouterr().err
        assert main([*base, "db", "status"]) == 1
        assert "NEWER than this release" in capsys.readouterr().out
