"""``clinic-server``: first run, devices, staff, the simulated national system, serve, bench."""

from __future__ import annotations

import json
import os
import secrets
import stat
import time

import pytest

from clinic.cli import main
from contract.device_signing import DeviceIdentity
from testbed.bench.clinic import _ServerProcess
from tests.support.clinic import fresh_database, pin_check_by_issued_kiosk


@pytest.fixture
def setup(backend, population, tmp_path):
    """An initialised data dir (via the CLI) and the base arguments to reach it."""
    with fresh_database(backend) as database:
        base = ["--data-dir", str(tmp_path / "data")]
        if database:
            base += ["--database", database]
        password_file = tmp_path / "password"
        password_file.write_text(secrets.token_urlsafe(16) + "\n")
        code = main(
            [
                *base,
                "init",
                "--jpki-ca",
                str(population.ca_directory / "jpki-ca.pem"),
                "--jpki-crl",
                str(population.crl_path),
                "--password-file",
                str(password_file),
            ]
        )
        assert code == 0
        yield base, tmp_path


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_init_keeps_keys_private_and_refuses_to_run_twice(setup, capsys):
    base, tmp = setup
    data = tmp / "data"
    for key in ("server.key.pem", "server-ca.key.pem", "device-ca.key.pem"):
        assert mode(data / key) == 0o600, key
    assert mode(data) == 0o700
    capsys.readouterr()
    assert main([*base, "init", "--password-file", str(tmp / "password")]) == 2
    assert "initialised already" in capsys.readouterr().err


def test_init_never_falls_back_to_a_default_password(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path / "d"), "init"]) == 2
    assert "--password-file" in capsys.readouterr().err
    weak = tmp_path / "weak"
    weak.write_text("1234\n")
    assert main(["--data-dir", str(tmp_path / "e"), "init", "--password-file", str(weak)]) == 2
    assert not (tmp_path / "e" / "server.pem").exists()


def test_device_issue_list_and_revoke(setup, capsys):
    base, tmp = setup
    out = tmp / "kiosk-files"
    assert main([*base, "device", "issue", "reception-1", "--out", str(out)]) == 0
    assert mode(out / "reception-1.key.pem") == 0o600
    identity = DeviceIdentity.load(out / "reception-1.pem", out / "reception-1.key.pem")
    assert identity.device_id == "reception-1"
    assert (out / "clinic-server-ca.pem").read_bytes() == (
        tmp / "data" / "server-ca.pem"
    ).read_bytes()
    capsys.readouterr()
    assert main([*base, "device", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(d["device_id"], d["revoked"]) for d in listed] == [("reception-1", False)]
    assert main([*base, "device", "revoke", "reception-1"]) == 0
    assert main([*base, "device", "revoke", "reception-1"]) == 1, "nothing left to revoke"
    capsys.readouterr()
    main([*base, "device", "list", "--json"])
    assert json.loads(capsys.readouterr().out)[0]["revoked"] is True
    assert main([*base, "device", "issue", "../escape", "--out", str(out)]) == 2


def test_national_load_list_and_revoke(setup, population, capsys):
    base, _ = setup
    assert main([*base, "national", "load", str(population.insured_path)]) == 0
    capsys.readouterr()
    assert main([*base, "national", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == sum(1 for c in population.cards if c.certificate_serial)
    several = next(r for r in rows if r["card_id"].endswith("several-matches"))
    assert (several["validity_code"], several["records"]) == (5, 2)
    card = population.card("valid-family")
    assert (
        main(
            [
                *base,
                "national",
                "revoke",
                "--issuer",
                card.certificate_issuer,
                "--serial",
                card.certificate_serial,
            ]
        )
        == 0
    )
    assert main([*base, "national", "revoke", "--card-id", "no-such-card"]) == 1
    capsys.readouterr()
    main([*base, "national", "list", "--json"])
    revoked = {r["card_id"] for r in json.loads(capsys.readouterr().out) if r["revoked"]}
    assert revoked == {card.id}


def test_national_load_reports_a_malformed_line(setup, tmp_path, capsys):
    base, _ = setup
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"card_id": "x", "certificate": {"issuer": "CN=x", "serial": "1"},'
        ' "validity_code": 9, "records": []}\n'
    )
    assert main([*base, "national", "load", str(bad)]) == 2
    assert "bad.jsonl:1" in capsys.readouterr().err


def test_staff_accounts_and_the_access_log_check(setup, tmp_path, capsys):
    base, _ = setup
    password = tmp_path / "nurse-password"
    password.write_text(secrets.token_urlsafe(14) + "\n")
    assert main([*base, "staff", "add", "nurse", "--password-file", str(password)]) == 0
    assert main([*base, "staff", "add", "nurse", "--password-file", str(password)]) == 2
    capsys.readouterr()
    assert main([*base, "staff", "list"]) == 0
    listing = capsys.readouterr().out
    assert "admin" in listing
    assert "nurse" in listing
    assert main([*base, "access-log", "verify"]) == 0


def test_serve_answers_kiosks_and_stops_cleanly_on_sigterm(setup, population):
    base, tmp = setup
    data = tmp / "data"
    assert main([*base, "national", "load", str(population.insured_path)]) == 0
    out = tmp / "kiosk-files"
    assert main([*base, "device", "issue", "reception-1", "--out", str(out)]) == 0
    database = base[3] if len(base) > 2 else None
    server = _ServerProcess(data, database)
    try:
        result = pin_check_by_issued_kiosk(server.kiosk_port, out, "reception-1", population)
        assert result.eligible
    finally:
        started = time.monotonic()
        server.stop()
    assert server.process.returncode == 0
    assert time.monotonic() - started < 10


def test_bench_prints_the_figures_as_json(capsys):
    assert main(["bench", "--json", "--seconds", "0.5", "--kiosks", "1,2"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert [f["kiosks"] for f in figures] == [1, 2]
    for f in figures:
        assert f["per_second"] > 0
        assert 0 < f["p50_ms"] <= f["p99_ms"]
        assert f["errors"] == 0
