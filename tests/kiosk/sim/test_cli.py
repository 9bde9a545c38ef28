"""``kiosk sim population`` and ``kiosk sim card``."""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from smartcard import scard

from kiosk.sim import cli
from kiosk.sim.outcomes import OUTCOMES


def test_population_command_writes_a_population(tmp_path, capsys):
    out = tmp_path / "population"
    code = cli.main(
        ["sim", "population", "--out", str(out), "--count", "21", "--seed", "3",
         "--today", "2026-03-15"]
    )  # fmt: skip
    assert code == 0
    assert f"wrote 21 cards ({len(OUTCOMES)} outcomes)" in capsys.readouterr().out
    manifest = json.loads((out / "population.json").read_text(encoding="utf-8"))
    assert manifest["today"] == "2026-03-15"
    assert manifest["seed"] == 3
    assert len(list((out / "cards").glob("*.toml"))) == 21
    assert (out / "insured.jsonl").is_file()
    assert (out / "ca" / "jpki-ca.crl.pem").is_file()


def test_population_needs_at_least_one_card(tmp_path, capsys):
    assert cli.main(["sim", "population", "--out", str(tmp_path), "--count", "0"]) == 2
    assert "--count" in capsys.readouterr().err


def test_population_refuses_a_folder_of_something_else(tmp_path, capsys):
    (tmp_path / "thesis.tex").write_text("keep me", encoding="utf-8")
    assert cli.main(["sim", "population", "--out", str(tmp_path), "--count", "1"]) == 1
    assert "population.json" in capsys.readouterr().err
    assert (tmp_path / "thesis.tex").exists()


def test_sim_without_a_command_shows_its_usage(capsys):
    assert cli.main(["sim"]) == 2
    assert "population" in capsys.readouterr().err


def test_add_parser_plugs_into_the_kiosk_parser():
    parser = argparse.ArgumentParser(prog="kiosk")
    cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["sim", "card", "x.toml", "--port", "35964", "--realistic-timing"])
    assert args.handler is cli.run_card
    assert (args.profile, args.port, args.realistic_timing) == (Path("x.toml"), 35964, True)


def test_card_with_a_broken_profile_fails_with_a_message(tmp_path, capsys):
    broken = tmp_path / "broken.toml"
    broken.write_text("format = 1\n", encoding="utf-8")
    assert cli.main(["sim", "card", str(broken)]) == 1
    assert "broken.toml" in capsys.readouterr().err


def test_card_without_vpcd_fails_with_a_message(card_profile_factory, capsys):
    profile = card_profile_factory()
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    assert cli.main(["sim", "card", str(profile.path), "--port", str(port)]) == 1
    assert "pcscd" in capsys.readouterr().err


def test_card_stays_inserted_until_stopped(card_profile_factory, capsys):
    profile = card_profile_factory()
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(5)
        args = argparse.Namespace(
            profile=profile.path,
            host="127.0.0.1",
            port=server.getsockname()[1],
            realistic_timing=True,
        )
        stop = threading.Event()
        result: list[int] = []
        runner = threading.Thread(target=lambda: result.append(cli.run_card(args, stop=stop)))
        runner.start()
        connection, _ = server.accept()
        with connection:
            time.sleep(0.3)
            assert runner.is_alive()
            stop.set()
            runner.join(5)
            with pytest.raises(ConnectionResetError):  # the card left the field
                connection.recv(2)
    assert result == [0]
    out = capsys.readouterr().out
    assert f"inserted {profile.id} (mynumber)" in out
    assert f"removed {profile.id}" in out


@pytest.mark.pcsc
def test_card_command_inserts_until_sigterm(pcscd, card_profile_factory):
    profile = card_profile_factory()
    process = subprocess.Popen(
        [sys.executable, "-m", "kiosk.sim.cli", "sim", "card", str(profile.path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith(f"inserted {profile.id}")
        assert _wait_for_presence(context, pcscd, present=True)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=10)
        assert process.returncode == 0, stderr
        assert f"removed {profile.id}" in stdout
        assert _wait_for_presence(context, pcscd, present=False)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        scard.SCardReleaseContext(context)


def _wait_for_presence(context: int, reader: str, *, present: bool) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        _, states = scard.SCardGetStatusChange(context, 0, [(reader, scard.SCARD_STATE_UNAWARE)])
        if bool(states[0][1] & scard.SCARD_STATE_PRESENT) == present:
            return True
        time.sleep(0.05)
    return False
