"""Finding 5: personal data at rest on the server, kept forever.

``clinic.db`` held every name, insurer number and address in clear, most verification rows
carried full records that nothing purged, decrypted kiosk log payloads were stored in clear,
and the device CA's key sat unencrypted next to it. These tests run real servers on loopback
and look at the raw database (the SQLite file with its WAL, or every PostgreSQL row as text):

- after verifications and a kiosk log upload, none of the patients' personal strings is in it
  (the server still shows them to staff: they are sealed with the record key, kept apart);
- after the retention period (the server's own clock moved on, or ``clinic-server purge`` with
  0 days) only the summary remains, and the dashboard still lists the visit;
- ``clinic-server serve`` starts and answers kiosks with the device CA's key moved away, and
  ``device issue`` takes the key from where it is kept, with its passphrase.

The national side's data lives in a database of its own here, as a real connector's does.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from clinic.cli import main
from clinic.errors import StorageError
from clinic.national.simulated import SimulatedNationalSystem, load_insured, read_insured_jsonl
from clinic.schema import CLINIC_SCHEMA
from clinic.storage import Database
from contract.outbox_record import Backlog, Batch
from contract.sealing import OutboxPublicKey
from kiosk.clinic_client import ClinicClient
from kiosk.outbox.queue import Outbox
from kiosk.sim.population import Population
from testbed.bench.clinic import _ServerProcess
from tests.support.clinic import (
    Clinic,
    csrf_of,
    fresh_database,
    pin_check_by_issued_kiosk,
    postgres_url,
    start_clinic,
    stop_clinic,
)

DAY_S = 86400.0
#: Record fields that name or locate a person (shorter values could match by chance).
PERSONAL_FIELDS = ("Name", "NameKana", "Address", "InsurerNumber", "Birthdate", "PostNumber")


@pytest.fixture(scope="module")
def national(population: Population, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """The simulated national system's data, in a database of its own."""
    db = Database.open(str(tmp_path_factory.mktemp("national") / "national.db"), pool_size=2)
    db.migrate([CLINIC_SCHEMA])
    load_insured(db, read_insured_jsonl(population.insured_path), now=time.time())
    try:
        yield db
    finally:
        db.close()


@pytest.fixture(scope="module")
def clinic(
    backend: str,
    population: Population,
    national: Database,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Clinic]:
    with fresh_database(backend) as database:
        running = start_clinic(
            backend,
            population,
            tmp_path_factory.mktemp("at-rest"),
            database,
            connector=SimulatedNationalSystem(national),
        )
        try:
            yield running
        finally:
            stop_clinic(running)


@pytest.fixture
def clock(clinic: Clinic) -> Iterator[None]:
    yield
    clinic.clock.offset = 0.0


# --- looking at the raw database --------------------------------------------------------------


def personal_strings(population: Population, outcome: str) -> list[str]:
    """The personal values of the card's record, as the national system answers them."""
    card_id = population.card(outcome).id
    (entry,) = [e for e in read_insured_jsonl(population.insured_path) if e.card_id == card_id]
    values = [r.get(f) for r in entry.records for f in PERSONAL_FIELDS]
    return [v for v in values if isinstance(v, str) and len(v) >= 6]


def raw_sqlite(path: Path) -> bytes:
    """The database file and its WAL and shared-memory files, as bytes on disk."""
    parts = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return b"".join(p.read_bytes() for p in parts if p.exists())


def raw_database(clinic: Clinic) -> bytes:
    if clinic.backend == "sqlite":
        return raw_sqlite(clinic.config.paths.sqlite)
    import psycopg
    from psycopg import sql

    url = clinic.config.database
    assert url is not None
    assert postgres_url()
    chunks = []
    with psycopg.connect(url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        ]
        for table in tables:
            query = sql.SQL("SELECT t::text FROM {} AS t").format(sql.Identifier(table))
            chunks += [row[0] for row in conn.execute(query)]
    return "\n".join(chunks).encode("utf-8")


def found_in(raw: bytes, strings: list[str]) -> list[str]:
    """The strings present in ``raw`` (UTF-8, or JSON-escaped as \\uXXXX)."""
    found = []
    for s in strings:
        escaped = json.dumps(s).strip('"').encode("ascii")
        if s.encode("utf-8") in raw or escaped in raw:
            found.append(s)
    return found


# --- what a day at the clinic leaves ----------------------------------------------------------


@contextlib.contextmanager
def signed_in(clinic: Clinic) -> Iterator[httpx.Client]:
    with clinic.staff_client() as client:
        assert clinic.login(client).status_code == 303
        yield client


def upload_log(clinic: Clinic, kiosk_name: str, tmp_path: Path, payload: dict) -> None:
    """A kiosk's log record holding personal data, sealed and uploaded as kiosks do."""
    kiosk = clinic.kiosk(kiosk_name)
    public = OutboxPublicKey.load(clinic.config.data_dir / "outbox.pub.json")
    with Outbox(tmp_path / f"{kiosk_name}.db", device_id=kiosk.device_id, public_key=public) as box:
        box.append("staff.action", payload)
        records = box.pending(max_records=10, max_bytes=1 << 20)
    ack = ClinicClient(kiosk.http).send_batch(Batch(kiosk.device_id, tuple(records), Backlog(0, 0)))
    assert list(ack.acked) == [r.header.seq for r in records]


def test_no_name_insurer_number_or_address_in_the_raw_database(clinic, national, tmp_path):
    population = clinic.population
    pin_strings = personal_strings(population, "valid-national")
    visual_strings = personal_strings(population, "valid-employee")
    assert len(pin_strings) >= 5
    kiosk = clinic.kiosk("kiosk-rest")
    pin = kiosk.check(clinic.card("valid-national"), "pin")
    assert pin.eligible
    visual = kiosk.check(clinic.card("valid-employee"), "visual")
    with signed_in(clinic) as staff:
        staff.post(
            f"/verifications/{visual.verification_id}/decide",
            data={"csrf": csrf_of(staff), "decision": "confirmed", "next": "/"},
        )
        # staff still read the record: the server opens it with the record key
        detail = staff.get(f"/verifications/{pin.verification_id}").text
    assert pin_strings[0] in detail
    assert clinic.context.service.get(visual.verification_id).records
    upload_log(clinic, "kiosk-rest", tmp_path, {"note": pin_strings[0], "at": pin_strings[2]})
    stored = clinic.context.extras["ingest"].records_of("kiosk-rest")
    assert pin_strings[0] in stored[-1]["payload"], "the payload opens for the server"

    strings = pin_strings + visual_strings
    found = found_in(raw_database(clinic), strings)
    print(
        f"\n[{clinic.backend}] personal strings in the raw clinic database after 2 checks and a "
        f"log upload: {len(found)} of {len(strings)}"
    )
    assert found == []
    # the search does find them where they are in clear: the national side's own database
    national_raw = raw_sqlite(Path(national.url_for_display.removeprefix("sqlite://")))
    assert found_in(national_raw, strings) == strings
    # the key is a file of its own, private to the server's user
    key = clinic.config.record_key_path
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert key.read_bytes().strip() not in raw_database(clinic)


def test_a_sealed_record_moved_to_another_row_does_not_open(clinic):
    kiosk = clinic.kiosk("kiosk-move")
    first = kiosk.check(clinic.card("valid-family"), "pin").verification_id
    second = kiosk.check(clinic.card("valid-late-elderly"), "pin").verification_id
    with clinic.context.db.transaction(write=True) as tx:
        row = tx.one("SELECT records FROM verifications WHERE id = ?", (first,))
        assert row["records"].startswith("aesgcm1:")
        tx.execute("UPDATE verifications SET records = ? WHERE id = ?", (row["records"], second))
    with pytest.raises(StorageError):
        clinic.context.service.get(second)


def test_after_the_retention_period_only_the_summary_remains(clinic, clock):
    kiosk = clinic.kiosk("kiosk-old")
    old = kiosk.check(clinic.card("valid-elderly-20"), "pin")
    retention = clinic.context.extras["retention"]
    assert retention.retention_days == 90
    clinic.clock.offset = 91 * DAY_S  # the server's clock: three months on
    later = clinic.connect(kiosk.cert_path, kiosk.key_path, clock=clinic.clock)
    try:
        # (by then the population's CRL is out of date: the check stops before the national
        # system, and keeps the card certificate's serial like any check)
        recent = later.check(clinic.card("valid-employee"), "pin")
    finally:
        later.close()
    assert clinic.context.service.get(recent.verification_id).cert_serial is not None
    result = retention.purge()  # what the server runs every ten minutes
    print(f"\n[{clinic.backend}] purge after 91 days: {result}")
    reduced = clinic.context.service.get(old.verification_id)
    assert reduced.records is None
    assert reduced.cert_serial is None
    assert reduced.cert_not_after is None
    # the summary: when, where, how and what came out
    assert (reduced.reason_code, reduced.validity_code) == ("eligible", 1)
    assert reduced.device_id == "kiosk-old"
    assert reduced.mode == "pin"
    kept = clinic.context.service.get(recent.verification_id)
    assert kept.cert_serial is not None, "a check inside the retention period keeps its details"


def test_a_purge_by_hand_with_zero_days_leaves_the_visit_on_the_dashboard(clinic, tmp_path, capsys):
    kiosk = clinic.kiosk("kiosk-purge")
    strings = personal_strings(clinic.population, "valid-family")
    check = kiosk.check(clinic.card("valid-family"), "pin")
    upload_log(clinic, "kiosk-purge", tmp_path, {"note": strings[0]})
    base = ["--data-dir", str(clinic.config.data_dir)]
    if clinic.config.database:
        base += ["--database", clinic.config.database]
    capsys.readouterr()
    assert main([*base, "purge", "--days", "0"]) == 0
    printed = capsys.readouterr().out
    print(f"\n[{clinic.backend}] clinic-server purge --days 0: {printed.strip()}")
    assert "reduced to their summary" in printed
    with clinic.context.db.transaction() as tx:
        # (the check the retention test made three months ahead is not past 0 days yet)
        left = tx.one(
            "SELECT count(*) AS n FROM verifications WHERE created_at < ?"
            " AND (records IS NOT NULL OR cert_serial IS NOT NULL)",
            (time.time(),),
        )
        payloads = tx.one(
            "SELECT count(*) AS n FROM outbox_records WHERE payload IS NOT NULL"
            " OR sealed IS NOT NULL"
        )
    print(
        f"[{clinic.backend}] after the purge: {left['n']} verification(s) with a record or "
        f"certificate serial, {payloads['n']} log payload(s)"
    )
    assert left["n"] == 0
    assert payloads["n"] == 0
    summary = clinic.context.service.get(check.verification_id)
    assert summary.records is None
    assert summary.reason_code == "eligible"
    with signed_in(clinic) as staff:
        listing = staff.get("/", params={"day": summary.day}).text
        assert f'id="v-{check.verification_id}"' in listing, "the visit is still listed"
        detail = staff.get(f"/verifications/{check.verification_id}").text
        assert 'id="no-record"' in detail
    assert found_in(raw_database(clinic), strings) == []


# --- the device CA's key is not needed to serve -------------------------------------------------


def test_serve_starts_without_the_device_ca_key_and_issuing_asks_its_passphrase(
    population: Population, tmp_path: Path, capsys
):
    data = tmp_path / "data"
    base = ["--data-dir", str(data)]
    secret = tmp_path / "password"
    secret.write_text(secrets.token_urlsafe(16) + "\n")
    passphrase = tmp_path / "ca-passphrase"
    passphrase.write_text(secrets.token_urlsafe(24) + "\n")
    wrong = tmp_path / "wrong-passphrase"
    wrong.write_text("not the passphrase\n")
    record_key = tmp_path / "keys" / "record.key"
    init = [
        *base,
        "init",
        "--jpki-ca",
        str(population.ca_directory / "jpki-ca.pem"),
        "--jpki-crl",
        str(population.crl_path),
        "--password-file",
        str(secret),
        "--ca-passphrase-file",
        str(passphrase),
        "--record-key",
        str(record_key),
    ]
    assert main(init) == 0
    assert stat.S_IMODE(os.stat(record_key).st_mode) == 0o600
    assert not (data / "record.key").exists(), "the record key is where the setting says"
    ca_key = data / "device-ca.key.pem"
    assert b"ENCRYPTED" in ca_key.read_bytes()
    assert b"ENCRYPTED" in (data / "server-ca.key.pem").read_bytes()
    # both CA keys leave the server (an offline medium)
    offline = tmp_path / "offline"
    offline.mkdir()
    shutil.move(ca_key, offline / ca_key.name)
    shutil.move(data / "server-ca.key.pem", offline / "server-ca.key.pem")
    out = tmp_path / "kiosk-files"
    capsys.readouterr()
    issue = [*base, "device", "issue", "reception-1", "--out", str(out)]
    assert main(issue) == 2
    assert "--ca-key" in capsys.readouterr().err
    moved = ["--ca-key", str(offline / ca_key.name)]
    assert main([*issue, *moved, "--ca-passphrase-file", str(wrong)]) == 2
    assert "passphrase" in capsys.readouterr().err
    assert main([*issue, *moved, "--ca-passphrase-file", str(passphrase)]) == 0
    assert main([*base, "national", "load", str(population.insured_path)]) == 0

    server = _ServerProcess(data, None)
    try:
        result = pin_check_by_issued_kiosk(server.kiosk_port, out, "reception-1", population)
        assert result.eligible
    finally:
        server.stop()
    assert server.process.returncode == 0
    assert not (data / ca_key.name).exists()
    print("\nserve without the device CA key: started, answered a PIN check, stopped cleanly")

    # the retention purge runs when the server starts
    with (data / "clinic.toml").open("a", encoding="utf-8") as settings:
        settings.write("retention_days = 0\n")
    _ServerProcess(data, None).stop()
    with contextlib.closing(Database.open(str(data / "clinic.db"), pool_size=1)) as db:
        with db.transaction() as tx:
            row = tx.one(
                "SELECT records, cert_serial, reason_code FROM verifications WHERE id = ?",
                (result.verification_id,),
            )
    assert row == {"records": None, "cert_serial": None, "reason_code": "eligible"}
