"""``kiosk doctor`` against the real parts: pcscd with the virtual reader and card, a clinic
server on 127.0.0.1 over mutual TLS, the outbox and the uploader's lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from contract.self_check import State
from kiosk.card import apdu
from kiosk.card.pcsc import PcscContext
from kiosk.config import KioskConfig, load_config
from kiosk.doctor import outbox as outbox_check
from kiosk.doctor import pcsc, server
from kiosk.outbox.running import hold_uploader_lock, uploader_pid, uploader_running
from kiosk.sim.card import VirtualJpkiCard
from kiosk.sim.profile import CardProfile
from kiosk.sim.vpcd import inserted
from testbed.environment import write_kiosk_config
from testbed.local_clinic import LocalClinic

READER = "Virtual PCD 00 00"
PORT = 35963
DEVICES = ("kiosk-doctor", "kiosk-revoked")
KIOSK = (sys.executable, "-m", "kiosk.cli")


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalClinic]:
    server = LocalClinic(tmp_path_factory.mktemp("doctor-clinic"), DEVICES)
    # revoked before the server ever saw it, as `clinic-server device revoke` does it
    subprocess.run(
        [
            *(sys.executable, "-m", "clinic.cli", "--data-dir", str(server.data_dir)),
            *("device", "revoke", "kiosk-revoked"),
        ],
        check=True,
        capture_output=True,
    )
    with server:
        yield server


def kiosk_config(clinic: LocalClinic, folder: Path, device: str = "kiosk-doctor") -> Path:
    return write_kiosk_config(
        folder / "kiosk.toml",
        device=clinic.kiosks[device],
        server_url=clinic.url,
        outbox=folder / "data" / "outbox.db",
        reader=READER,
    )


@pytest.fixture
def config(clinic: LocalClinic, tmp_path: Path) -> KioskConfig:
    return load_config(kiosk_config(clinic, tmp_path))


def doctor(config_path: Path, **env: str) -> tuple[int, list[dict[str, str]]]:
    """``kiosk doctor --json`` in its own process (``env`` added to this one's)."""
    done = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "doctor", "--json", "--config", str(config_path)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )
    assert done.stderr == ""
    return done.returncode, json.loads(done.stdout)


def by_name(findings: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {f["name"]: f for f in findings}


# --- the clinic server ---------------------------------------------------------------------------


def test_the_server_accepts_this_device_over_a_signed_round_trip(config: KioskConfig) -> None:
    finding = server.check_server(config.server, config.device)
    assert finding.state is State.OK, finding
    assert finding.detail.startswith(f"{config.server.url} accepts device kiosk-doctor")


def test_a_wrong_server_ca_fails_and_says_which_file_to_copy(
    config: KioskConfig, clinic: LocalClinic, tmp_path: Path
) -> None:
    wrong = clinic.kiosks["kiosk-doctor"].certificate  # any certificate but the clinic's CA
    finding = server.check_server(replace(config.server, ca=wrong), config.device)
    assert finding.state is State.FAILED
    assert f"the pinned CA {wrong} did not sign" in finding.detail
    assert "copy the clinic's server CA (clinic-server-ca.pem" in finding.advice


def test_a_revoked_device_fails_and_is_told_to_get_a_new_certificate(
    clinic: LocalClinic, tmp_path: Path
) -> None:
    revoked = load_config(kiosk_config(clinic, tmp_path, "kiosk-revoked"))
    finding = server.check_server(revoked.server, revoked.device)
    assert finding.state is State.FAILED
    assert "does not accept device kiosk-revoked (HTTP 403" in finding.detail
    assert "the device was revoked: clinic-server device issue NAME" in finding.advice


def test_a_server_that_does_not_answer_fails(config: KioskConfig) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"https://127.0.0.1:{port}"
    closed = replace(config.server, url=url, urls=(url,), connect_timeout_s=1.0)
    finding = server.check_server(closed, config.device)
    assert finding.state is State.FAILED
    assert finding.detail.startswith(f"cannot reach https://127.0.0.1:{port}")
    assert "is the clinic server running" in finding.advice


def test_each_server_of_several_is_checked_on_its_own(config: KioskConfig) -> None:
    """With [server] urls, one finding per server: the one that answers passes, the one that
    does not fails under its own number (no failover hides it)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = f"https://127.0.0.1:{port}"
    both = replace(config.server, urls=(config.server.url, down), connect_timeout_s=1.0)
    named = server.each_server(both)
    assert [name for name, _ in named] == ["clinic server 1", "clinic server 2"]
    findings = [server.check_server(one, config.device, name) for name, one in named]
    assert [f.name for f in findings] == ["clinic server 1", "clinic server 2"]
    assert findings[0].state is State.OK, findings[0]
    assert findings[1].state is State.FAILED
    assert findings[1].detail.startswith(f"cannot reach {down}")
    assert server.each_server(config.server) == [("clinic server", config.server)]


# --- the outbox and the uploader -----------------------------------------------------------------


def fill(config: KioskConfig, records: int) -> None:
    with config.outbox.open("kiosk-doctor") as outbox:
        outbox.append_many(("flow.transition", {"n": n}) for n in range(records))


def test_no_outbox_yet_warns(config: KioskConfig) -> None:
    finding = outbox_check.check_outbox(config.outbox, "kiosk-doctor")
    assert finding.state is State.WARNING
    assert "the kiosk makes it when it first starts" in finding.advice


def test_a_backlog_with_no_uploader_fails(config: KioskConfig) -> None:
    fill(config, 162)
    finding = outbox_check.check_outbox(config.outbox, "kiosk-doctor")
    assert finding.state is State.FAILED
    assert "162 records queued" in finding.detail
    assert "uploader not running, last success never" in finding.detail
    assert "alarms uploader.not_running" in finding.detail
    assert "systemctl start onshi-kiosk-uploader" in finding.advice


def test_a_backlog_being_sent_passes_until_its_oldest_record_is_stale(config: KioskConfig) -> None:
    fill(config, 3)
    with hold_uploader_lock(config.outbox.path):
        assert uploader_running(config.outbox.path)
        assert uploader_pid(config.outbox.path) == os.getpid()
        now = time.time_ns()
        fresh = outbox_check.check_outbox(config.outbox, "kiosk-doctor", now_ns=now)
        assert fresh.state is State.OK, fresh
        assert "uploader running" in fresh.detail
        later = now + 3600 * 10**9
        stale = outbox_check.check_outbox(config.outbox, "kiosk-doctor", now_ns=later)
        assert stale.state is State.WARNING
        assert "alarms outbox.stale" in stale.detail
    assert not uploader_running(config.outbox.path)


def test_a_second_uploader_on_the_same_outbox_is_refused(config: KioskConfig) -> None:
    from contract.errors import ConfigError

    config.outbox.path.parent.mkdir(parents=True, exist_ok=True)
    with hold_uploader_lock(config.outbox.path):
        with pytest.raises(ConfigError, match="an uploader already runs"):
            with hold_uploader_lock(config.outbox.path):
                pass


def test_kiosk_uploader_run_refuses_to_run_twice(clinic: LocalClinic, tmp_path: Path) -> None:
    path = kiosk_config(clinic, tmp_path)
    fill(load_config(path), 1)
    with hold_uploader_lock(load_config(path).outbox.path):
        second = subprocess.run(
            [*KIOSK, "uploader", "run", "--until-empty", "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert second.returncode == 2
    assert f"an uploader already runs on {tmp_path}/data/outbox.db (pid {os.getpid()})" in (
        second.stderr
    )


def test_the_uploader_keeps_its_last_success_and_last_error_in_the_outbox(
    clinic: LocalClinic, tmp_path: Path
) -> None:
    path = kiosk_config(clinic, tmp_path)
    config = load_config(path)
    fill(config, 5)
    run = subprocess.run(
        [*KIOSK, "uploader", "run", "--until-empty", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    with config.outbox.open("kiosk-doctor") as outbox:
        status = outbox.status()
        assert status.records == 0
        assert status.last_upload_wall_ns is not None
        assert status.last_error is None
        outbox.note_upload_error("server.503")
        fill(config, 1)
        failing = outbox.status()
    assert failing.last_error == "server.503"
    assert failing.failing
    alarms = failing.backlog_alarms(uploader_running=True, now_ns=time.time_ns())
    assert "uploader.failing" in alarms
    finding = outbox_check.check_outbox(config.outbox, "kiosk-doctor")
    assert "last error server.503" in finding.detail


def test_uploader_status_says_nobody_sends_the_backlog(clinic: LocalClinic, tmp_path: Path) -> None:
    path = kiosk_config(clinic, tmp_path)
    fill(load_config(path), 162)
    done = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "uploader", "status", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "uploader      not running" in lines
    assert "last success  never" in lines
    assert "queued        162 records" in done.stdout
    assert "alarms        uploader.not_running" in lines
    assert any(line.startswith("  uploader.not_running: records wait") for line in lines)
    as_json = subprocess.run(
        [*KIOSK, "uploader", "status", "--json", "--stale-after", "0", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    doc = json.loads(as_json.stdout)
    assert doc["uploader_running"] is False
    assert doc["alarms"] == ["uploader.not_running", "outbox.stale"]
    assert doc["oldest_age_s"] >= 0


# --- PC/SC: the service, the reader, the card ----------------------------------------------------


pcsc_test = pytest.mark.pcsc


@pcsc_test
def test_the_reader_is_found_through_pcscd(pcscd: str, tmp_path: Path) -> None:
    finding, reader = pcsc.check_reader(pcscd, usb_root=tmp_path)
    assert finding.state is State.OK
    assert finding.detail == f"pcscd runs; reader {pcscd}"
    assert reader == pcscd
    wrong, none = pcsc.check_reader("No Such Reader", usb_root=tmp_path)
    assert wrong.state is State.FAILED
    assert none is None
    assert 'set it to "auto"' in wrong.advice


@pcsc_test
def test_a_plugged_in_rcs380_is_called_out(pcscd: str, tmp_path: Path) -> None:
    device = tmp_path / "1-1"
    device.mkdir()
    (device / "idVendor").write_text("054c\n")
    (device / "idProduct").write_text("06c1\n")
    finding, _ = pcsc.check_reader(pcscd, usb_root=tmp_path)
    assert finding.state is State.WARNING
    assert "RC-S380 is not a PC/SC (CCID) reader on Linux" in finding.advice


@pcsc_test
def test_a_stopped_pcscd_fails_with_the_way_to_start_it(
    pcscd: str, config: KioskConfig, tmp_path: Path
) -> None:
    # the shared daemon keeps running: this process's PC/SC library looks for another socket
    code, findings = doctor(config.source, PCSCLITE_CSOCK_NAME=str(tmp_path / "no-pcscd"))
    assert code == 1
    reader = by_name(findings)["pc/sc reader"]
    assert reader["state"] == "failed"
    assert reader["detail"].startswith("the PC/SC service does not answer")
    assert reader["advice"].startswith("start it: systemctl start pcscd.socket")
    assert by_name(findings)["card probe"]["state"] == "warning"


def wait_for_card(present: bool, timeout: float = 5.0) -> None:
    with PcscContext() as context:
        deadline = time.monotonic() + timeout
        while context.card_present(READER) != present:
            assert time.monotonic() < deadline, "pcscd does not report the card's change"
            time.sleep(0.02)


@pcsc_test
def test_the_card_probe_spends_no_try_and_selects_only_the_jpki_application(
    pcscd: str, card_profile_factory: Callable[..., CardProfile]
) -> None:
    profile = card_profile_factory(pin_tries_left=2)
    card = VirtualJpkiCard(profile)
    wait_for_card(False)
    with inserted(card, port=PORT) as slot:
        assert slot.wait_until_powered(5.0)
        wait_for_card(True)
        finding = pcsc.check_card(READER)
    assert finding.state is State.OK, finding
    assert finding.detail.startswith("mynumber_card, PIN usable (tries left 2)")
    assert set(card.selected_aids) == {apdu.JPKI_AID}
    verifies = [c for c in card.apdu_log if c[1] == 0x20]
    assert verifies
    assert all(len(c) == 4 for c in verifies)  # the empty VERIFY only, never a PIN
    assert profile.path is not None
    assert CardProfile.load(profile.path).pin_tries_left == 2


@pcsc_test
def test_no_card_on_the_reader_is_fine(pcscd: str) -> None:
    wait_for_card(False)
    finding = pcsc.check_card(READER)
    assert finding.state is State.OK
    assert finding.detail.startswith("no card on the reader")


# --- the whole command -------------------------------------------------------------------------


@pcsc_test
def test_kiosk_doctor_prints_every_check(pcscd: str, config: KioskConfig) -> None:
    code, findings = doctor(config.source)
    names = [f["name"] for f in findings]
    assert names == [
        "pc/sc reader",
        "card probe",
        "display",
        "touch",
        "gpio",
        "voice",
        "clock",
        "enrolment",
        "certificate",
        "clinic server",
        "outbox",
        "disk",
        "root fs",
        "update slots",
    ]
    assert all(set(f) == {"name", "state", "detail", "advice"} for f in findings)
    found = by_name(findings)
    assert found["update slots"]["detail"].startswith("no A/B slots here")  # not the image
    assert found["clinic server"]["state"] == "ok"
    assert found["gpio"]["detail"].startswith("mock pin factory")
    failed = [f["name"] for f in findings if f["state"] == "failed"]
    assert code == (1 if failed else 0)
    text = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "doctor", "--config", str(config.source)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert text.stdout.splitlines()[0].startswith("ok       pc/sc reader")
    assert "ok       clinic server" in text.stdout


@pcsc_test
def test_the_doctor_benchmark_prints_figures_for_each_check(
    pcscd: str, config: KioskConfig
) -> None:
    from kiosk.bench import doctor as bench

    figures = bench.run(config.source, runs=1)
    assert set(figures) == {"runs", "config", "command", "checks_in_process", "per_check"}
    assert set(figures["command"]) == {"median_ms", "max_ms"}
    assert "clinic server" in figures["per_check"]
    assert figures["per_check"]["clinic server"]["state"] == "ok"
    assert "whole command (fresh process)" in bench.to_text(figures)
