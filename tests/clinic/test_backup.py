"""``clinic-server backup`` and ``restore``: SQLite through its online backup API while the
server runs, PostgreSQL through pg_dump/pg_restore; a restore gives back every record."""

from __future__ import annotations

import contextlib
import os
import stat

from clinic.backup import record_counts
from clinic.cli import main
from clinic.storage import Database
from tests.support.clinic import fresh_database, start_clinic, stop_clinic


def _rows(db: Database) -> dict[str, set]:
    with db.transaction() as tx:
        return {
            "verifications": {
                (r["id"], r["reason_code"], r["records"])
                for r in tx.all("SELECT id, reason_code, records FROM verifications")
            },
            "devices": {r["device_id"] for r in tx.all("SELECT device_id FROM devices")},
            "access_log": {r["entry_hash"] for r in tx.all("SELECT entry_hash FROM access_log")},
        }


def test_a_backup_taken_while_serving_restores_every_record(backend, population, tmp_path, capsys):
    with fresh_database(backend) as database:
        running = start_clinic(backend, population, tmp_path, database)
        base = ["--data-dir", str(running.config.data_dir)]
        if database:
            base += ["--database", database]
        backup_file = tmp_path / "clinic.backup"
        try:
            kiosk = running.kiosk("backup-kiosk")
            for outcome in ("valid-employee", "valid-national", "revoked-certificate"):
                kiosk.check(running.card(outcome))
            with running.staff_client() as staff:
                running.login(staff)  # an access log entry
            # taken while the server serves
            assert main([*base, "backup", str(backup_file)]) == 0
            assert stat.S_IMODE(os.stat(backup_file).st_mode) == 0o600
            assert main([*base, "backup", str(backup_file)]) == 2, "never overwritten"
            with contextlib.closing(Database.open(running.config.database_url)) as db:
                saved = _rows(db)
                saved_counts = record_counts(db)
            assert len(saved["verifications"]) == 3
            # after the backup: more checks, and a restore refused while the server runs
            kiosk.check(running.card("valid-employee"))
            capsys.readouterr()
            assert main([*base, "restore", str(backup_file)]) == 2
            assert "a server is running" in capsys.readouterr().err
        finally:
            stop_clinic(running)

        assert main([*base, "restore", str(backup_file)]) == 0
        with contextlib.closing(Database.open(running.config.database_url)) as db:
            assert _rows(db) == saved
            restored = record_counts(db)
        assert restored == saved_counts, "every table as it was when the backup was taken"
        # the access log's hash chain is whole again
        assert main([*base, "access-log", "verify"]) == 0
