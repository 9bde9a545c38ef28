"""The storage layer on both back-ends: migrations per component, SQL dialect, the access log."""

from __future__ import annotations

import time

import pytest

from clinic.access_log import AccessLog, Seal
from clinic.errors import ConflictError, StorageError
from clinic.schema import CLINIC_SCHEMA
from clinic.storage import Database, Migration, Schema
from tests.support.clinic import fresh_database


@pytest.fixture
def db(backend, tmp_path):
    with fresh_database(backend) as url:
        database = Database.open(url or f"sqlite://{tmp_path / 'test.db'}")
        try:
            database.migrate([CLINIC_SCHEMA])
            yield database
        finally:
            database.close()


OUTBOX_V1 = Migration.portable(
    1,
    "CREATE TABLE outbox_items (id TEXT PRIMARY KEY, body TEXT NOT NULL); "
    "CREATE INDEX outbox_items_body ON outbox_items (body)",
)
OUTBOX_V2 = Migration(
    2,
    sqlite="ALTER TABLE outbox_items ADD COLUMN received_at REAL",
    postgresql="ALTER TABLE outbox_items ADD COLUMN received_at DOUBLE PRECISION",
)


def test_migrating_twice_applies_nothing_the_second_time(db):
    assert db.migrate([CLINIC_SCHEMA]) == []


def test_another_component_registers_and_evolves_its_own_tables(db):
    assert db.migrate([CLINIC_SCHEMA, Schema("outbox", (OUTBOX_V1,))]) == [("outbox", 1)]
    assert db.migrate([CLINIC_SCHEMA, Schema("outbox", (OUTBOX_V1, OUTBOX_V2))]) == [("outbox", 2)]
    with db.transaction(write=True) as tx:
        tx.execute(
            "INSERT INTO outbox_items (id, body, received_at) VALUES (?, ?, ?)", ("a", "x", 1.5)
        )
        assert tx.one("SELECT received_at FROM outbox_items WHERE id = ?", ("a",)) == {
            "received_at": 1.5
        }


def test_migration_versions_must_rise():
    with pytest.raises(ValueError, match="rise"):
        Schema("broken", (Migration.portable(2, "SELECT 1"), Migration.portable(1, "SELECT 1")))


def test_question_marks_are_placeholders_and_percent_signs_are_literal(db):
    with db.transaction(write=True) as tx:
        tx.execute(
            "INSERT INTO staff (username, password_hash, created_at) VALUES (?, ?, ?)",
            ("50%-user", "h", 1.0),
        )
        rows = tx.all("SELECT username FROM staff WHERE username LIKE '%' || ? || '%'", ("50%",))
    assert [r["username"] for r in rows] == ["50%-user"]


def test_a_duplicate_key_is_a_conflict_and_the_transaction_rolls_back(db):
    insert = "INSERT INTO devices (device_id, created_at) VALUES (?, ?)"
    with db.transaction(write=True) as tx:
        tx.execute(insert, ("k1", 1.0))

    def insert_two():
        with db.transaction(write=True) as tx:
            tx.execute(insert, ("k2", 1.0))
            tx.execute(insert, ("k1", 1.0))

    with pytest.raises(ConflictError):
        insert_two()
    with db.transaction() as tx:
        assert tx.all("SELECT device_id FROM devices ORDER BY device_id") == [{"device_id": "k1"}]


def sealed_log(db, tmp_path):
    seal = Seal.open(tmp_path / "access-log.key", tmp_path / "access-log.anchor", db)
    return AccessLog(db, clock=time.time, seal=seal)


def test_the_access_log_refuses_changes_and_deletions(db, tmp_path):
    log = sealed_log(db, tmp_path)
    log.record("alice", "view", ["v1"])
    with pytest.raises(StorageError), db.transaction(write=True) as tx:
        tx.execute("UPDATE access_log SET username = 'mallory'")
    with pytest.raises(StorageError), db.transaction(write=True) as tx:
        tx.execute("DELETE FROM access_log")
    assert [e["username"] for e in log.entries()] == ["alice"]


def test_an_access_log_edited_around_its_guards_shows_a_broken_chain(db, tmp_path):
    log = sealed_log(db, tmp_path)
    log.record("alice", "view", ["v1"])
    log.record("bob", "export.csv", ["v1", "v2"], {"day": "2026-11-24"})
    log.record("alice", "view", ["v3"])
    check = log.check_chain()
    assert check.intact
    assert check.entries == 4
    with db.transaction(write=True) as tx:
        if db.backend == "sqlite":
            tx.execute("DROP TRIGGER access_log_no_update")
        else:
            tx.execute("ALTER TABLE access_log DISABLE TRIGGER access_log_no_change")
        second = tx.all("SELECT id FROM access_log ORDER BY id")[1]["id"]
        tx.execute("UPDATE access_log SET username = 'mallory' WHERE id = ?", (second,))
    broken = log.check_chain()
    assert not broken.intact
    assert broken.first_broken_id == second


def test_writers_from_many_threads_do_not_trip_over_each_other(db):
    import threading

    errors = []

    def write(n):
        try:
            for i in range(20):
                with db.transaction(write=True) as tx:
                    tx.execute(
                        "INSERT INTO devices (device_id, created_at) VALUES (?, ?)",
                        (f"t{n}-{i}", 1.0),
                    )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.transaction() as tx:
        assert tx.one("SELECT COUNT(*) AS n FROM devices")["n"] == 120
