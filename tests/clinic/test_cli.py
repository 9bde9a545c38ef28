"""``clinic-server``: first run, devices, staff, the simulated national system, serve, bench."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import secrets
import signal
import ssl
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from clinic import cli
from clinic.cli import build_parser, main
from clinic.times import ZonedFormatter, clinic_time
from contract.device_signing import DeviceIdentity
from kiosk.clinic_client import ClinicClient, make_http_client
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


# --- the command line itself: help, prompts, times, stopping ---------------------------------


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("clinic-server",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def test_every_command_and_option_has_a_help_text_without_markup():
    for path, parser in _parsers(build_parser()):
        texts = [parser.description or ""]
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    assert choice.help, f"{' '.join(path)} {choice.dest} has no help"
                    texts.append(choice.help)
                continue
            name = "/".join(action.option_strings) or action.dest
            assert action.help, f"{' '.join(path)} {name} has no help"
            texts.append(action.help)
        for text in texts:
            assert not re.search(r"`|\*\*|:\w+:", text), f"markup in {' '.join(path)}: {text}"


def test_the_readme_lists_every_command():
    readme = (Path(__file__).parents[2] / "clinic" / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Command line") :]
    section = section[: section.index("\n## ", 1)]
    [commands] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    for name in commands.choices:
        assert re.search(rf"^  {re.escape(name)}\b", section, re.M), f"{name} is not listed"


class _Terminal:
    """Standard input as a terminal, for the password prompts."""

    def isatty(self) -> bool:
        return True


def test_init_refuses_a_short_password_before_asking_for_it_again(tmp_path, monkeypatch, capsys):
    asked: list[str] = []

    def getpass(prompt: str = "") -> str:
        asked.append(prompt)
        return "short"

    monkeypatch.setattr(cli.sys, "stdin", _Terminal())
    monkeypatch.setattr(cli.getpass, "getpass", getpass)
    assert main(["--data-dir", str(tmp_path / "d"), "init"]) == 2
    assert len(asked) == 1, "refused after the first prompt"
    assert "at least 10 characters" in capsys.readouterr().err
    assert not (tmp_path / "d" / "server.pem").exists()


def test_a_password_asked_for_twice_must_match(tmp_path, monkeypatch, capsys):
    answers = iter(["a-long-enough-password", "another-long-password"])
    monkeypatch.setattr(cli.sys, "stdin", _Terminal())
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt="": next(answers))
    assert main(["--data-dir", str(tmp_path / "d"), "init"]) == 2
    assert "differ" in capsys.readouterr().err


def test_times_are_shown_in_the_clinic_zone_with_its_name(setup, capsys):
    base, tmp = setup
    assert main([*base, "device", "issue", "reception-1", "--out", str(tmp / "k")]) == 0
    config, db, registry = cli._registry(cli.build_parser().parse_args([*base, "device", "list"]))
    try:
        registry.touch("reception-1")
    finally:
        db.close()
    capsys.readouterr()
    assert main([*base, "device", "list"]) == 0
    listed = capsys.readouterr().out
    assert re.search(r"last seen \d{4}-\d\d-\d\d \d\d:\d\d:\d\d JST$", listed, re.M), listed
    assert config.timezone == "Asia/Tokyo"
    assert clinic_time(0, "Asia/Tokyo") == "1970-01-01 09:00:00 JST"
    assert clinic_time(0, "Europe/Berlin") == "1970-01-01 01:00:00 CET"


def test_log_lines_are_stamped_in_the_clinic_zone():
    record = logging.LogRecord("clinic.server", logging.INFO, __file__, 1, "hello", None, None)
    record.created, record.msecs = 0.25, 250.0
    line = ZonedFormatter("%(asctime)s %(levelname)s %(message)s", "Asia/Tokyo").format(record)
    assert line == "1970-01-01 09:00:00,250 JST INFO hello"


@pytest.mark.parametrize("how", ["sigterm", "sigterm-to-both", "ctrl-c"])
def test_a_normal_stop_of_serve_logs_no_error(setup, population, how):
    """SIGTERM (systemctl stop: to the server, or to both its processes) and Ctrl-C (SIGINT to
    the process group), with a kiosk and a staff browser still connected: exit 0, no ERROR."""
    base, tmp = setup
    assert main([*base, "device", "issue", "reception-1", "--out", str(tmp / "k")]) == 0
    command = [sys.executable, "-m", "clinic.cli", *base, "serve"]
    command += ["--kiosk-port", "0", "--staff-port", "0", "--log-level", "info"]
    server = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    ports: dict[str, int] = {}
    started = threading.Event()

    def read() -> None:
        assert server.stdout is not None
        for line in server.stdout:
            output.append(line)
            found = re.search(r"^(kiosk API|dashboard)\s+https://[^:]+:(\d+)", line)
            if found:
                ports[found.group(1)] = int(found.group(2))
            if "clinic server: kiosk API" in line:
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(60), "".join(output)
        kiosk = _kiosk_client(ports["kiosk API"], tmp / "k", "reception-1")
        kiosk.challenge()  # a kept-alive kiosk connection
        staff = httpx.Client(
            base_url=f"https://127.0.0.1:{ports['dashboard']}",
            verify=ssl.create_default_context(cafile=str(tmp / "data" / "server-ca.pem")),
        )
        password = (tmp / "password").read_text().strip()
        page = staff.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        staff.post(
            "/login",
            data={"csrf": csrf.group(1), "username": "admin", "password": password, "next": "/"},
        )
        assert staff.get("/kiosks").status_code == 200  # a kept-alive staff connection
        events = staff.stream("GET", "/events", timeout=30)  # and a live page's event stream
        stream = events.__enter__()
        assert stream.status_code == 200
        if how == "sigterm":
            server.send_signal(signal.SIGTERM)
        elif how == "sigterm-to-both":
            os.killpg(server.pid, signal.SIGTERM)
        else:
            os.killpg(server.pid, signal.SIGINT)
        assert server.wait(30) == 0
        events.__exit__(None, None, None)
        staff.close()
        kiosk.close()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
        reader.join(10)
        assert server.stdout is not None
        server.stdout.close()
    text = "".join(output)
    assert "Finished server process" in text
    assert "ERROR" not in text, text
    assert "Traceback" not in text, text


def _kiosk_client(port: int, issued: Path, device_id: str) -> ClinicClient:
    cert, key = issued / f"{device_id}.pem", issued / f"{device_id}.key.pem"
    http = make_http_client(
        f"https://127.0.0.1:{port}",
        ca_file=issued / "clinic-server-ca.pem",
        identity=DeviceIdentity.load(cert, key),
        client_cert_file=cert,
        client_key_file=key,
    )
    return ClinicClient(http, retries=0)
