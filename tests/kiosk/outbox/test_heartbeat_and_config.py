"""The heartbeat record, the settings file and the ``kiosk uploader`` commands."""

from __future__ import annotations

import argparse
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from contract.errors import ConfigError
from contract.sealing import OutboxPrivateKey
from kiosk import __version__
from kiosk.cli import main
from kiosk.clinic_client import ClinicClient
from kiosk.errors import OutboxFull
from kiosk.outbox import heartbeat as hb
from kiosk.outbox.cli import add_parser, open_outbox, open_uploader
from kiosk.outbox.config import load_settings, parse_settings
from kiosk.outbox.queue import Outbox

MakeOutbox = Callable[..., Outbox]

#: The kernel's "clock not synchronised" bit in struct timex's status (<sys/timex.h>).
STA_UNSYNC = 0x0040


def fake_machine(root: Path) -> tuple[Path, Path]:
    sys_root, proc_root = root / "sys", root / "proc"
    for n, (kind, temp) in enumerate([("acpitz", "30000"), ("cpu-thermal", "48312")]):
        zone = sys_root / f"class/thermal/thermal_zone{n}"
        zone.mkdir(parents=True)
        (zone / "type").write_text(kind + "\n")
        (zone / "temp").write_text(temp + "\n")
    proc_root.mkdir()
    (proc_root / "uptime").write_text("12345.67 2345.00\n")
    return sys_root, proc_root


def test_a_heartbeat_carries_queue_reader_temperature_uptime_version_and_clock(
    make_outbox: MakeOutbox, server_key: OutboxPrivateKey, tmp_path: Path
) -> None:
    sys_root, proc_root = fake_machine(tmp_path)
    outbox = make_outbox()
    outbox.append("card.event", {})
    beat = hb.Heartbeat(
        outbox,
        reader_state=lambda: "present",
        sys_root=sys_root,
        proc_root=proc_root,
        clock_synced=lambda: True,
    )
    seq = beat.beat()
    assert seq is not None
    [record] = [r for r in outbox.pending(max_records=10, max_bytes=1 << 20) if r.seq == seq]
    assert record.header.kind == "heartbeat"
    payload = json.loads(server_key.opener().open(record.sealed, record.header))
    assert payload["queue"]["records"] == 1  # the queue before this beat
    assert payload["reader"] == "present"
    assert payload["temperature_c"] == 48.3  # the CPU zone, not the first one
    assert payload["uptime_s"] == 12345.67
    assert payload["version"] == __version__
    assert payload["clock_synced"] is True
    assert payload["alarms"] == []


def test_a_missing_sensor_or_a_broken_probe_does_not_stop_the_heartbeat(
    make_outbox: MakeOutbox, tmp_path: Path
) -> None:
    def broken() -> str:
        raise RuntimeError("reader probe failed")

    beat = hb.Heartbeat(
        make_outbox(),
        reader_state=broken,
        sys_root=tmp_path / "nosys",
        proc_root=tmp_path / "noproc",
        clock_synced=lambda: None,
    )
    payload = beat.collect()
    assert payload["reader"] == "error:RuntimeError"
    assert payload["temperature_c"] is None
    assert payload["uptime_s"] is None
    assert payload["clock_synced"] is None


def test_a_heartbeat_tells_the_update_slots_the_confirm_published(
    make_outbox: MakeOutbox, tmp_path: Path
) -> None:
    from kiosk.update import slot_status

    public = tmp_path / "run" / "status.json"
    assert slot_status.published(public) == (None, None)  # a unit without A/B slots
    slot_status.publish(
        {
            "booted": "B",
            "committed": "B",
            "trying": None,
            "slots": {
                "A": {"release": "0.1.0 (build 1)", "state": "bad"},
                "B": {"release": "0.1.1 (build 2)", "state": "good"},
            },
            "last_try": {
                "slot": "B",
                "release": "0.1.1 (build 2)",
                "outcome": "committed",
                "reason": "READY and kiosk doctor passed",
                "at": "2026-12-01T10:00:00+00:00",
                "waited_s": 40.0,
            },
        },
        public,
    )
    assert public.stat().st_mode & 0o777 == 0o644  # the kiosk's own user reads it
    beat = hb.Heartbeat(
        make_outbox(),
        clock_synced=lambda: None,
        update_slots=lambda: slot_status.published(public),
    )
    health, _queue = beat.health()
    assert health.slots == "A 0.1.0 (build 1) · B 0.1.1 (build 2) committed, booted"
    assert health.last_update == (
        "B 0.1.1 (build 2) committed 2026-12-01T10:00:00+00:00: READY and kiosk doctor passed"
    )
    assert not health.update_rolled_back


def test_a_full_outbox_refuses_the_heartbeat_without_stopping_it(make_outbox: MakeOutbox) -> None:
    outbox = make_outbox(max_bytes=64 * 1024)
    refused = False
    for _ in range(64):  # 64 KiB of 1 KiB records: full well before the last
        try:
            outbox.append("card.event", {"pad": "x" * 1000})
        except OutboxFull:
            refused = True
            break
    assert refused
    assert outbox.status().level == "full"
    assert outbox.status().refused == 1
    beat = hb.Heartbeat(outbox, clock_synced=lambda: None)
    assert beat.beat() is None
    assert beat.beat() is None  # and the next beat tries again
    assert outbox.status().refused == 3


# --- clock sync: timedatectl where systemd answers, else the kernel's adjtimex -----------------


def fake_timedatectl(folder: Path, script: str) -> Path:
    """A ``timedatectl`` on PATH that records its arguments and runs ``script`` (sh)."""
    folder.mkdir(exist_ok=True)
    command = folder / "timedatectl"
    command.write_text(f'#!/bin/sh\necho "$@" > "{folder}/args"\n{script}\n')
    command.chmod(0o755)
    return folder / "args"


class FakeLibc:
    """Stands in for the C library: ``adjtimex`` fills in the status a test chose."""

    status = 0
    result = 0  # the clock state adjtimex returns (TIME_OK), or -1 for a failure

    def __init__(self, name: str, use_errno: bool = False) -> None:
        self.name = name

    def adjtimex(self, timex: Any) -> int:
        timex._obj.status = self.status
        return self.result


def kernel_says(monkeypatch: pytest.MonkeyPatch, status: int, result: int = 0) -> None:
    libc = type("Libc", (FakeLibc,), {"status": status, "result": result})
    monkeypatch.setattr(hb.ctypes, "CDLL", libc)


@pytest.mark.parametrize(("answer", "synced"), [("yes", True), ("no", False)])
def test_clock_sync_is_what_timedatectl_says_where_systemd_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: str, synced: bool
) -> None:
    args = fake_timedatectl(tmp_path / "bin", f"echo {answer}")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    kernel_says(monkeypatch, status=0 if not synced else STA_UNSYNC)  # the opposite: not asked
    assert hb.clock_synced() is synced
    assert args.read_text().split() == ["show", "-p", "NTPSynchronized", "--value"]


@pytest.mark.parametrize(
    "script",
    [
        "echo 'System has not been booted with systemd as init system' >&2; exit 1",
        "echo maybe",
        "echo yes; exit 1",
        "exec sleep 5",  # past the probe's timeout
    ],
    ids=["no-systemd", "unknown-answer", "failed", "hangs"],
)
@pytest.mark.parametrize(
    ("status", "synced"), [(0, True), (STA_UNSYNC | 0x1, False)], ids=["synced", "unsynced"]
)
def test_without_an_answer_from_timedatectl_the_kernel_decides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str, status: int, synced: bool
) -> None:
    fake_timedatectl(tmp_path / "bin", script)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    kernel_says(monkeypatch, status=status)
    assert hb.clock_synced() is synced


def test_without_timedatectl_the_kernel_decides_and_else_nobody_knows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no timedatectl at all
    kernel_says(monkeypatch, status=STA_UNSYNC)
    assert hb.clock_synced() is False
    kernel_says(monkeypatch, status=0, result=-1)  # adjtimex failed
    assert hb.clock_synced() is None
    monkeypatch.setattr(hb.ctypes.util, "find_library", lambda name: None)  # no C library
    assert hb.clock_synced() is None


def test_the_kernel_answers_the_clock_sync_probe_on_linux() -> None:
    # the real adjtimex, read only: a None here would mean the probe itself is broken
    assert isinstance(hb._adjtimex_synced(), bool)


CONFIG = """
[device]
certificate = "device.pem"
key = "device.key.pem"

[server]
url = "https://clinic.example:8443"
ca = "server-ca.pem"

[outbox]
path = "var/outbox.db"
public_key = "outbox.pub.json"
max_bytes = 1048576

[uploader]
batch_max_records = 50
backoff_cap_s = 60
state_file = "run/uploader.json"
"""


def test_settings_resolve_relative_paths_and_check_values(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_text(CONFIG)
    settings = load_settings(path)
    assert settings.outbox.path == tmp_path / "var/outbox.db"
    assert settings.outbox.max_bytes == 1048576
    assert settings.uploader is not None
    assert settings.uploader.policy.batch_max_records == 50
    assert settings.uploader.policy.backoff_cap_s == 60.0
    assert settings.uploader.state_file == tmp_path / "run/uploader.json"
    with pytest.raises(ConfigError, match="url"):
        parse_settings(
            {"outbox": {"path": "a", "public_key": "b"}, "server": {}, "device": {}}, tmp_path
        )
    with pytest.raises(ConfigError, match="max_bytes"):
        parse_settings({"outbox": {"path": "a", "public_key": "b", "max_bytes": "big"}}, tmp_path)
    with pytest.raises(ConfigError, match=r"\[outbox\]"):
        parse_settings({}, tmp_path)


def config_for(local_clinic: object, device: str, folder: Path, text: str = CONFIG) -> Path:
    """``text`` with the files of one of the local clinic's kiosks, and the outbox's folder."""
    files = local_clinic.kiosks[device]  # type: ignore[attr-defined]
    (folder / "var").mkdir(mode=0o700, exist_ok=True)
    config = folder / "kiosk.toml"
    config.write_text(
        text.replace("https://clinic.example:8443", local_clinic.url)  # type: ignore[attr-defined]
        .replace('"device.pem"', json.dumps(str(files.certificate)))
        .replace('"device.key.pem"', json.dumps(str(files.key)))
        .replace('"server-ca.pem"', json.dumps(str(files.server_ca)))
        .replace('"outbox.pub.json"', json.dumps(str(files.outbox_public_key)))
    )
    return config


def test_kiosk_uploader_status_and_unpark(
    local_clinic: object,
    server_key: OutboxPrivateKey,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = config_for(local_clinic, "kiosk-cli", tmp_path)
    parser = argparse.ArgumentParser(prog="kiosk")
    add_parser(parser.add_subparsers(dest="command", required=True))
    settings = load_settings(config)

    with open_outbox(settings, "kiosk-cli") as outbox:
        seqs = outbox.append_many([("card.event", {"n": i}) for i in range(3)])
        outbox.park(seqs[:2], "HTTP 422: test")
    args = parser.parse_args(["uploader", "status", "--json", "--config", str(config)])
    assert args.handler(args) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["parked"] == 2
    assert status["parked_reasons"] == [{"reason": "HTTP 422: test", "records": 2}]
    assert "outbox.parked" in status["alarms"]
    args = parser.parse_args(["uploader", "unpark", "--config", str(config)])
    assert args.handler(args) == 0
    assert "2 records queued again" in capsys.readouterr().out
    args = parser.parse_args(["uploader", "run", "--until-empty", "--config", str(config)])
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        # as systemd would for the Type=notify unit
        notify.bind(str(tmp_path / "notify.sock"))
        notify.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
        assert args.handler(args) == 0
        said = [notify.recv(4096).decode() for _ in range(2)]
    assert said[0].startswith("READY=1")
    assert said[1].startswith("STOPPING=1")
    with open_outbox(settings, "kiosk-cli") as outbox:
        assert outbox.status().records == 0
    assert json.loads(settings.uploader.state_file.read_text())["state"] == "idle"  # type: ignore[union-attr]


def test_the_uploader_sends_through_the_clinic_client_with_the_configured_timeouts(
    local_clinic: object, tmp_path: Path
) -> None:
    text = CONFIG.replace("[outbox]", "connect_timeout_s = 1.5\nread_timeout_s = 7\n\n[outbox]")
    settings = load_settings(config_for(local_clinic, "kiosk-cli", tmp_path, text))
    assert settings.uploader is not None
    identity = settings.uploader.access.device.identity()
    with open_uploader(settings, identity) as uploader:
        client = uploader.sender
        assert isinstance(client, ClinicClient), "the flow's client, not one of its own"
        assert client.timeout == httpx.Timeout(connect=1.5, read=7.0, write=7.0, pool=1.5)


def test_kiosk_uploader_with_a_broken_setting_says_one_line_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_text(CONFIG.replace("[outbox]", "read_timeout_s = -1\n\n[outbox]"))
    for command in ("run", "status"):
        assert main(["uploader", command, "--config", str(config)]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines == [
            f"kiosk: {config}: [server] read_timeout_s must be a number of seconds above 0"
        ]


def test_kiosk_bench_outbox_reports_the_promised_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from testbed.bench import outbox as bench

    parser = argparse.ArgumentParser(prog="kiosk bench")
    bench.add_parser(parser.add_subparsers(dest="bench_command", required=True))
    args = parser.parse_args(
        [
            *("outbox", "--json", "--appends", "50", "--drain", "500"),
            *("--kem", "x25519", "--dir", str(tmp_path)),
        ]
    )
    assert args.handler(args) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["kem"] == "x25519"
    assert 0 < figures["append_ms"]["p50"] <= figures["append_ms"]["p99"]
    assert figures["drain_per_second"] > 0
    assert figures["by_kem"][0]["drain"]["stored_at_server"] == 500
    assert list(tmp_path.iterdir()) == []  # cleaned up


def test_an_outbox_in_a_missing_folder_stops_the_kiosk_naming_the_setting(tmp_path: Path) -> None:
    public = OutboxPrivateKey.generate("x25519").public_key()
    key_file = tmp_path / "outbox.pub.json"
    key_file.write_text(public.to_json(), encoding="utf-8")
    missing = tmp_path / "data-partition-not-mounted"
    settings = parse_settings(
        {"outbox": {"path": str(missing / "outbox.db"), "public_key": str(key_file)}}, tmp_path
    )
    with pytest.raises(ConfigError, match=r"\[outbox\] path: the folder .* does not exist"):
        settings.outbox.open("kiosk-cli")
    assert not missing.exists(), "nothing was created in its place"
