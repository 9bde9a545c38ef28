"""Tampering with the access log around its triggers (finding: the chain was not keyed/anchored).

Before: editing an entry and recomputing the SHA-256 chain, deleting the newest 50 entries, or
deleting them all passed ``clinic-server access-log verify``. Now the chain is an HMAC under a
key kept outside the database, and each new head is anchored in a file outside it, so each of
these is found, and ``verify`` exits non-zero saying what it found.

Each test runs a real server on loopback, has staff open a record's page 60 times (60 access
log entries), stops the server, changes the database the way someone with the database file
(or a PostgreSQL superuser) would, and runs ``clinic-server access-log verify``.
"""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from clinic.cli import main as clinic_server
from clinic.server import build_context
from tests.support.clinic import Clinic, fresh_database, start_clinic, stop_clinic

VIEWS = 60


@pytest.fixture
def stopped_clinic(backend, population, tmp_path) -> Iterator[Clinic]:
    """A clinic whose access log holds VIEWS entries, its server stopped."""
    with fresh_database(backend) as database:
        clinic = start_clinic(backend, population, tmp_path, database)
        try:
            result = clinic.kiosk().check(clinic.card("valid-employee"))
            with clinic.staff_client() as staff:
                assert clinic.login(staff).status_code == 303
                for _ in range(VIEWS):
                    page = staff.get(f"/verifications/{result.verification_id}")
                    assert page.status_code == 200
        finally:
            stop_clinic(clinic)
        yield clinic


def verify(clinic: Clinic, capsys) -> tuple[int, str]:
    args = ["--data-dir", str(clinic.config.data_dir)]
    if clinic.config.database:
        args += ["--database", clinic.config.database]
    capsys.readouterr()
    code = clinic_server([*args, "access-log", "verify"])
    captured = capsys.readouterr()
    said = captured.out + captured.err
    with capsys.disabled():
        print(f"\n[{clinic.backend}] access-log verify -> exit {code}: {said.strip()}")
    return code, said


@contextmanager
def around_the_triggers(clinic: Clinic) -> Iterator[Any]:
    """A connection to the server's database with the append-only triggers out of the way."""
    if clinic.backend == "sqlite":
        import sqlite3

        conn = sqlite3.connect(clinic.config.paths.sqlite, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DROP TRIGGER IF EXISTS access_log_no_update")
            conn.execute("DROP TRIGGER IF EXISTS access_log_no_delete")
            yield conn
            conn.execute("COMMIT")
        finally:
            conn.close()
        return
    import psycopg
    from psycopg.rows import dict_row

    assert clinic.config.database is not None
    with psycopg.connect(clinic.config.database, row_factory=dict_row) as conn:
        conn.execute("ALTER TABLE access_log DISABLE TRIGGER access_log_no_change")
        yield _QmarkConnection(conn)


class _QmarkConnection:
    """``?`` placeholders on psycopg, like sqlite3."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self._conn.execute(sql.replace("?", "%s"), params)


def _sha256_chain_hash(prev: str, row: dict[str, Any]) -> str:
    """The chain's published formula, as anyone without a key can compute it."""
    canonical = json.dumps(
        [
            prev,
            repr(float(row["at"])),
            row["username"],
            row["action"],
            row["verification_id"],
            row["detail"],
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def test_an_untouched_log_verifies(stopped_clinic, capsys):
    code, said = verify(stopped_clinic, capsys)
    assert code == 0, said
    assert f"{VIEWS} entries" in said


def test_an_edited_entry_with_its_chain_recomputed_is_found(stopped_clinic, capsys):
    with around_the_triggers(stopped_clinic) as db:
        rows = [dict(r) for r in db.execute("SELECT * FROM access_log ORDER BY id").fetchall()]
        edited = rows[VIEWS // 2]["id"]
        prev = rows[0]["prev_hash"]
        for row in rows:
            if row["id"] == edited:
                row["username"] = "mallory"
            entry = _sha256_chain_hash(prev, row)
            db.execute(
                "UPDATE access_log SET username = ?, prev_hash = ?, entry_hash = ? WHERE id = ?",
                (row["username"], prev, entry, row["id"]),
            )
            prev = entry
    code, said = verify(stopped_clinic, capsys)
    assert code != 0
    assert "ALTERED" in said or "altered" in said
    assert "edited" in said, said


def test_deleting_the_newest_50_entries_is_found(stopped_clinic, capsys):
    with around_the_triggers(stopped_clinic) as db:
        ids = [r["id"] for r in db.execute("SELECT id FROM access_log ORDER BY id").fetchall()]
        db.execute("DELETE FROM access_log WHERE id >= ?", (ids[-50],))
    code, said = verify(stopped_clinic, capsys)
    assert code != 0
    assert "deleted" in said, said


def test_deleting_every_entry_is_found(stopped_clinic, capsys):
    with around_the_triggers(stopped_clinic) as db:
        db.execute("DELETE FROM access_log")
    code, said = verify(stopped_clinic, capsys)
    assert code != 0
    assert "empty" in said, said


def _recompute_unkeyed(db: Any, *, edit: int | None = None) -> None:
    rows = [dict(r) for r in db.execute("SELECT * FROM access_log ORDER BY id").fetchall()]
    prev = "0" * 64
    for row in rows:
        if row["id"] == edit:
            row["username"] = "mallory"
        entry = _sha256_chain_hash(prev, row)
        db.execute(
            "UPDATE access_log SET username = ?, prev_hash = ?, entry_hash = ? WHERE id = ?",
            (row["username"], prev, entry, row["id"]),
        )
        prev = entry


def test_an_installation_from_before_the_key_gets_one_and_keeps_its_old_entries(
    stopped_clinic, capsys
):
    paths = stopped_clinic.config.paths
    # the log as an older server left it: a plain SHA-256 chain, no key, no anchor
    with around_the_triggers(stopped_clinic) as db:
        _recompute_unkeyed(db)
    paths.access_log_key.unlink()
    paths.access_log_anchor.unlink()
    build_context(stopped_clinic.config).close()  # the first start of the new server
    assert stat.S_IMODE(paths.access_log_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.access_log_anchor.stat().st_mode) == 0o600
    code, said = verify(stopped_clinic, capsys)
    assert code == 0, said
    # the old entries' head is anchored now: rewriting them shows
    with around_the_triggers(stopped_clinic) as db:
        _recompute_unkeyed(db, edit=3)
    code, said = verify(stopped_clinic, capsys)
    assert code != 0
    assert "anchored" in said, said
    assert "changed" in said, said


def test_a_missing_anchor_file_or_key_is_reported(stopped_clinic, capsys):
    paths = stopped_clinic.config.paths
    anchor = paths.access_log_anchor.read_bytes()
    paths.access_log_anchor.write_bytes(anchor.splitlines(keepends=True)[0])
    code, said = verify(stopped_clinic, capsys)
    assert code == 0, "the first line alone: every entry is there, none anchored"
    assert f"{VIEWS} newest entries are not anchored" in said
    paths.access_log_anchor.write_bytes(b"")
    code, said = verify(stopped_clinic, capsys)
    assert code != 0
    assert "first line" in said, said
    paths.access_log_anchor.unlink()
    code, said = verify(stopped_clinic, capsys)
    assert code != 0
    assert "missing" in said, said
    paths.access_log_key.unlink()
    code, said = verify(stopped_clinic, capsys)
    assert code != 0
    assert "no access-log key" in said, said


def test_an_anchor_line_written_without_the_key_is_refused(stopped_clinic, capsys):
    paths = stopped_clinic.config.paths
    lines = paths.access_log_anchor.read_text().splitlines()
    forged = json.loads(lines[-1])
    forged["id"] = 1
    lines[-1] = json.dumps(forged)
    paths.access_log_anchor.write_text("\n".join(lines) + "\n")
    code, said = verify(stopped_clinic, capsys)
    assert code != 0
    assert "not written with the key" in said, said
