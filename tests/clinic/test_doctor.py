"""``clinic-server doctor``: each check passing and failing, on SQLite and PostgreSQL, against
the running server's data directory and database."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from clinic import doctor
from contract.self_check import State
from tests.support.clinic import Clinic


def names_and_states(findings: list[doctor.Finding]) -> list[tuple[str, str]]:
    return [(f.name, f.state.value) for f in findings]


def test_a_healthy_server_passes_and_names_a_kiosk_that_never_called(clinic: Clinic) -> None:
    clinic.kiosk("doctor-seen").client.challenge()  # a signed request: the server saw it
    clinic.issue_device("doctor-never")
    findings = doctor.run_checks(clinic.config)
    found = {f.name: f for f in findings}
    for name in ("tls certificate", "server ca", "device ca", "tls chain", "jpki ca", "crl"):
        assert found[name].state is State.OK, found[name]
    assert found["database"].state is State.OK
    expected = "PostgreSQL" if clinic.backend == "postgresql" else "SQLite"
    assert found["database"].detail.startswith(f"{expected} ")
    assert found["disk"].state in (State.OK, State.WARNING)
    assert found["national"].state is State.WARNING
    assert "simulated national system" in found["national"].detail
    seen = found["kiosk doctor-seen"]
    assert seen.state is State.OK, seen
    assert seen.detail.startswith("last contact ")
    never = found["kiosk doctor-never"]
    assert never.state is State.WARNING
    assert never.detail.startswith("never contacted the server")
    assert "kiosk doctor" in never.advice


def test_a_silent_kiosk_warns(clinic: Clinic) -> None:
    clinic.kiosk("doctor-silent").client.challenge()
    later = time.time() + 3600
    findings = doctor.check_kiosks(clinic.config, clinic.context.db, now=later)
    silent = next(f for f in findings if f.name == "kiosk doctor-silent")
    assert silent.state is State.WARNING
    assert silent.detail.startswith("silent: last contact 36")
    assert "is the kiosk on and on the network?" in silent.advice


def test_expired_certificates_fail_and_expiring_ones_warn(clinic: Clinic) -> None:
    paths = clinic.config.paths
    not_after = doctor.x509.load_pem_x509_certificate(
        paths.server_cert.read_bytes()
    ).not_valid_after_utc
    soon = doctor.check_certificate_file(
        "tls certificate", paths.server_cert, "renew it", now=not_after - dt.timedelta(days=5)
    )
    assert soon.state is State.WARNING
    assert soon.advice == "renew it before it expires"
    expired = doctor.run_checks(clinic.config, now=not_after + dt.timedelta(days=1))
    tls = next(f for f in expired if f.name == "tls certificate")
    assert tls.state is State.FAILED
    assert tls.detail == f"server.pem expired on {not_after:%Y-%m-%d}"
    assert tls.advice.startswith("renew it with the clinic's CA")


def test_a_stale_crl_fails_and_no_crl_warns(clinic: Clinic) -> None:
    config = clinic.config
    [fresh] = doctor.check_crls(config.jpki_ca_files, config.jpki_crl_sources)
    assert fresh.state is State.OK
    assert "next update" in fresh.detail
    [stale] = doctor.check_crls(
        config.jpki_ca_files,
        config.jpki_crl_sources,
        now=dt.datetime.now(dt.UTC) + dt.timedelta(days=400),
    )
    assert stale.state is State.FAILED
    assert "stale, its next update was due" in stale.detail
    assert "(revoked cards are not refused)" in stale.detail
    assert "jpki_crl_sources" in stale.advice
    [none] = doctor.check_crls(config.jpki_ca_files, ())
    assert none.state is State.WARNING
    assert none.detail == "no CRL source configured: revoked cards are not refused"
    [missing] = doctor.check_crls(config.jpki_ca_files, ("/nonexistent/jpki.crl",))
    assert missing.state is State.FAILED
    assert missing.detail.startswith("/nonexistent/jpki.crl: ")


def fake_statvfs(free_blocks: int) -> Callable[[Path], os.statvfs_result]:
    def statvfs(path: Path) -> os.statvfs_result:
        return os.statvfs_result((4096, 4096, 1_000_000, free_blocks, free_blocks, 0, 0, 0, 0, 255))

    return statvfs


def test_a_full_disk_fails(clinic: Clinic) -> None:
    full = doctor.check_disk(clinic.config.data_dir, statvfs=fake_statvfs(10))
    assert full.state is State.FAILED
    assert full.detail.startswith("0 MiB free of 3906 MiB (0%)")
    assert "`clinic-server purge` reduces old records" in full.advice
    assert doctor.check_disk(clinic.config.data_dir, statvfs=fake_statvfs(900_000)).state is (
        State.OK
    )


def test_a_database_that_does_not_answer_fails(clinic: Clinic, tmp_path: Path) -> None:
    if clinic.backend == "postgresql":
        gone = replace(clinic.config, database="postgresql://onshi@127.0.0.1:1/none")
        finding, db = doctor.check_database(gone)
        assert "is PostgreSQL running" in finding.advice
    else:
        gone = replace(clinic.config, data_dir=tmp_path)
        finding, db = doctor.check_database(gone)
        assert finding.advice == "run `clinic-server init`"
    assert db is None
    assert finding.state is State.FAILED


def test_a_national_system_that_is_down_fails(clinic: Clinic) -> None:
    down = doctor.check_connector(replace(clinic.config, national_down=True), None)
    assert down.state is State.FAILED
    assert "remove national_down" in down.advice
    broken = doctor.check_connector(replace(clinic.config, connector="no.such:factory"), None)
    assert broken.state is State.FAILED
    assert "does not load" in broken.detail


def test_the_command_prints_json_and_fails_with_a_failed_check(clinic: Clinic) -> None:
    command = [sys.executable, "-m", "clinic.cli", "--data-dir", str(clinic.config.data_dir)]
    if clinic.config.database:
        command += ["--database", clinic.config.database]
    done = subprocess.run(
        [*command, "doctor", "--json"], capture_output=True, text=True, timeout=60
    )
    findings = json.loads(done.stdout)
    assert all(set(f) == {"name", "state", "detail", "advice"} for f in findings)
    states = {f["state"] for f in findings}
    assert done.returncode == (1 if "failed" in states else 0), done.stdout
    assert {f["name"] for f in findings} >= {"tls certificate", "crl", "database", "disk"}
    text = subprocess.run([*command, "doctor"], capture_output=True, text=True, timeout=60)
    first = text.stdout.splitlines()[0].split()
    assert first[:4] == ["ok", "tls", "certificate", "server.pem"]
