"""The heartbeat record, the settings file and the ``kiosk uploader`` commands."""

from __future__ import annotations

import argparse
import json
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk import __version__
from kiosk.errors import ConfigError
from kiosk.outbox import heartbeat as hb
from kiosk.outbox.cli import add_parser
from kiosk.outbox.config import load_settings, parse_settings
from kiosk.outbox.sealing import OutboxPrivateKey
from kiosk.outbox.store import Outbox

MakeOutbox = Callable[..., Outbox]


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


def test_a_full_outbox_refuses_the_heartbeat_without_stopping_it(make_outbox: MakeOutbox) -> None:
    outbox = make_outbox(max_bytes=64 * 1024)
    while outbox.status().level != "full":
        try:
            outbox.append("card.event", {"pad": "x" * 1000})
        except Exception:
            break
    beat = hb.Heartbeat(outbox, clock_synced=lambda: None)
    assert beat.beat() is None
    assert outbox.status().refused >= 2


def test_the_clock_sync_probe_answers_true_false_or_unknown() -> None:
    assert hb.clock_synced() in (True, False, None)


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


def test_kiosk_uploader_status_and_unpark(
    clinic: object,
    server_key: OutboxPrivateKey,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = clinic.kiosks["kiosk-cli"]  # type: ignore[attr-defined]
    config = tmp_path / "kiosk.toml"
    config.write_text(
        CONFIG.replace("https://clinic.example:8443", clinic.url)  # type: ignore[attr-defined]
        .replace('"device.pem"', json.dumps(str(files.certificate)))
        .replace('"device.key.pem"', json.dumps(str(files.key)))
        .replace('"server-ca.pem"', json.dumps(str(files.server_ca)))
        .replace('"outbox.pub.json"', json.dumps(str(files.outbox_public_key)))
    )
    parser = argparse.ArgumentParser(prog="kiosk")
    add_parser(parser.add_subparsers(dest="command", required=True))
    settings = load_settings(config)
    from kiosk.outbox.cli import open_outbox

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


def test_kiosk_bench_outbox_reports_the_promised_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kiosk.bench import outbox as bench

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
