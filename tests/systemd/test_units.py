"""The unit files: systemd's own checks, the sandbox score, and commands that exist.

``systemd-analyze verify`` refuses a unit whose ``ExecStart=`` binary is missing, and the
units name where the appliance image installs the package (``/opt/onshi-kiosk/venv``). So
they are verified as rendered copies pointing at this virtual environment's entry points,
which is the only change; and the command lines themselves are parsed by the real CLIs.
"""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import PROJECT_ROOT

UNITS_DIR = PROJECT_ROOT / "systemd"
UNITS = ("onshi-kiosk.service", "onshi-kiosk-uploader.service", "onshi-clinic.service")
INSTALLED_BIN = "/opt/onshi-kiosk/venv/bin/"
VENV_BIN = Path(sys.executable).parent

#: Each unit's exposure budget (systemd-analyze security, 0 = locked down, 10 = exposed) and the
#: only checks it may fail, each for a reason of the kind of service it is. Any other failed
#: check is a sandbox regression and fails the test, whatever the score.
ALLOWED_EXPOSURE = {
    "onshi-kiosk.service": (
        1.4,
        {
            "RootDirectory=/RootImage=": "runs from the host's file system",
            "SupplementaryGroups=": "gpio, video, render, input, audio for its devices",
            "PrivateDevices=": "drives the screen, touch, sound and GPIO devices",
            "DeviceAllow=": "exactly those device classes (and the RTC that ProtectClock adds)",
            "PrivateUsers=": "the device groups must stay mapped",
            "MemoryDenyWriteExecute=": "Mesa's software renderer JIT-compiles",
            "ProcSubset=": "gpiozero reads the board revision, the outbox the boot id",
            "PrivateNetwork=": "talks to the clinic server",
            "RestrictAddressFamilies=~AF_(INET|INET6)": "talks to the clinic server",
            "RestrictAddressFamilies=~AF_UNIX": "pcscd, the journal, the notify socket",
            "RestrictAddressFamilies=~AF_NETLINK": "udev hot-plug of a USB keypad",
            "IPAddressDeny=": "allows the clinic's private networks only",
        },
    ),
    "onshi-kiosk-uploader.service": (
        1.0,
        {
            "RootDirectory=/RootImage=": "runs from the host's file system",
            "DeviceAllow=": "the RTC that ProtectClock adds, read only",
            "ProcSubset=": "the outbox reads the boot id",
            "PrivateNetwork=": "sends to the clinic server",
            "RestrictAddressFamilies=~AF_(INET|INET6)": "sends to the clinic server",
            "RestrictAddressFamilies=~AF_UNIX": "the journal, the notify socket",
            "IPAddressDeny=": "allows the clinic's private networks only",
        },
    ),
    "onshi-clinic.service": (
        1.1,
        {
            "RootDirectory=/RootImage=": "runs from the host's file system",
            "DeviceAllow=": "the RTC that ProtectClock adds, read only",
            "PrivateNetwork=": "serves kiosks and the dashboard",
            "RestrictAddressFamilies=~AF_(INET|INET6)": "serves kiosks, fetches CRLs",
            "RestrictAddressFamilies=~AF_UNIX": "PostgreSQL's socket, the journal",
            "IPAddressDeny=": "kiosks, staff browsers and CRL servers may be anywhere",
        },
    ),
}


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.fail("systemd-analyze is missing: install Debian's systemd package", pytrace=False)
    return path


def render(unit: str, into: Path) -> Path:
    """A copy of ``unit`` whose commands are this virtual environment's entry points."""
    text = (UNITS_DIR / unit).read_text(encoding="utf-8")
    assert INSTALLED_BIN in text
    target = into / unit
    target.write_text(text.replace(INSTALLED_BIN, f"{VENV_BIN}/"), encoding="utf-8")
    return target


def verify(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [systemd_analyze(), "verify", "--man=no", str(path)],
        capture_output=True,
        text=True,
        cwd=path.parent,
        timeout=60,
    )


def unit_file(unit: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS_DIR / unit, encoding="utf-8")
    return parser


@pytest.mark.parametrize("unit", UNITS)
def test_the_unit_passes_systemd_analyze_verify(unit: str, tmp_path: Path) -> None:
    result = verify(render(unit, tmp_path))
    # verify prints unknown keys and bad values but still exits 0: any output is a finding
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


def test_verify_as_run_here_does_report_a_broken_unit(tmp_path: Path) -> None:
    broken = render("onshi-kiosk-uploader.service", tmp_path)
    text = broken.read_text().replace("ProtectSystem=strict", "ProtectSystm=strict")
    broken.write_text(text.replace("Restart=always", "Restart=sometimes"))
    output = verify(broken).stderr
    assert "Unknown key 'ProtectSystm'" in output
    assert "restart" in output.lower()


@pytest.mark.parametrize("unit", UNITS)
def test_the_installed_paths_are_rewritten_and_nothing_else(unit: str, tmp_path: Path) -> None:
    original = (UNITS_DIR / unit).read_text().splitlines()
    rendered = render(unit, tmp_path).read_text().splitlines()
    differing = [(a, b) for a, b in zip(original, rendered, strict=True) if a != b]
    assert differing
    for before, after in differing:
        assert before.startswith("ExecStart=")
        assert after == before.replace(INSTALLED_BIN, f"{VENV_BIN}/")
        (executable, *_) = shlex.split(after.removeprefix("ExecStart="))
        assert Path(executable).is_file()


def exposure(unit: str) -> tuple[float, set[str], str]:
    result = subprocess.run(
        [systemd_analyze(), "security", "--offline=true", "--no-pager", str(UNITS_DIR / unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", output)
    assert match, output
    failed = {line.split()[1] for line in output.splitlines() if line.startswith("✗")}
    return float(match.group(1)), failed, output


@pytest.mark.parametrize("unit", UNITS)
def test_the_sandbox_fails_only_the_checks_the_service_needs(unit: str) -> None:
    score, failed, output = exposure(unit)
    budget, allowed = ALLOWED_EXPOSURE[unit]
    print(f"{unit}: systemd-analyze security exposure {score} (budget {budget})")
    unexpected = failed - set(allowed)
    assert not unexpected, f"{unit} newly exposed: {sorted(unexpected)}\n{output}"
    assert score <= budget, output


def test_units_run_as_their_own_users_which_sysusers_creates(tmp_path: Path) -> None:
    sysusers = shutil.which("systemd-sysusers")
    if sysusers is None:
        pytest.fail("systemd-sysusers is missing", pytrace=False)
    (tmp_path / "etc").mkdir()
    conf = UNITS_DIR / "sysusers.d" / "onshi-kiosk.conf"
    subprocess.run([sysusers, f"--root={tmp_path}", str(conf)], check=True, capture_output=True)
    passwd = {
        line.split(":")[0]: line.split(":")
        for line in (tmp_path / "etc/passwd").read_text().splitlines()
    }
    groups = {
        line.split(":")[0]: line.split(":")[3].split(",")
        for line in (tmp_path / "etc/group").read_text().splitlines()
    }
    for unit in UNITS:
        service = unit_file(unit)["Service"]
        user = service["User"]
        assert user in passwd, f"{unit}: no user {user}"
        assert passwd[user][5] == f"/var/lib/{service['StateDirectory']}"
        assert passwd[user][6] == "/usr/sbin/nologin"
        for group in service.get("SupplementaryGroups", "").split():
            assert user in groups[group], f"{user} is not in {group}"


def test_the_kiosk_unit_is_the_appliance_the_runbook_expects() -> None:
    service = unit_file("onshi-kiosk.service")["Service"]
    assert service["Type"] == "notify"
    assert service["Restart"] == "always"
    assert service["WatchdogSec"] == "20s"
    assert "SDL_VIDEODRIVER=kmsdrm" in (UNITS_DIR / "onshi-kiosk.service").read_text()
    assert set(service["SupplementaryGroups"].split()) == {
        "gpio",
        "video",
        "render",
        "input",
        "audio",
    }
    assert service["ProtectSystem"] == "strict"
    assert service["NoNewPrivileges"] == "yes"
    # lgpio's notification pipes need a writable working directory under ProtectSystem=strict
    assert service["WorkingDirectory"] == f"/run/{service['RuntimeDirectory']}"


def test_the_uploader_is_its_own_failure_domain_with_no_devices() -> None:
    kiosk = unit_file("onshi-kiosk.service")
    uploader = unit_file("onshi-kiosk-uploader.service")
    for section in ("Unit", "Service"):
        for key in ("Requires", "BindsTo", "PartOf", "Requisite"):
            assert key not in kiosk[section]
            assert key not in uploader[section]
    assert uploader["Service"]["Type"] == "notify"
    assert uploader["Service"]["Restart"] == "always"
    assert uploader["Service"]["PrivateDevices"] == "yes"
    # the same user and state directory: the outbox file is shared
    assert uploader["Service"]["User"] == kiosk["Service"]["User"]
    assert uploader["Service"]["StateDirectory"] == kiosk["Service"]["StateDirectory"]


def exec_start(unit: str) -> list[str]:
    return shlex.split(unit_file(unit)["Service"]["ExecStart"])


def test_the_uploader_command_is_a_real_kiosk_command() -> None:
    from kiosk.cli import build_parser
    from kiosk.outbox.cli import run_uploader

    executable, *argv = exec_start("onshi-kiosk-uploader.service")
    assert executable == INSTALLED_BIN + "kiosk"
    args = build_parser().parse_args(argv)
    assert args.handler is run_uploader
    assert str(args.config) == "/etc/onshi-kiosk/kiosk.toml"


def test_the_clinic_command_is_a_real_clinic_server_command() -> None:
    from clinic.cli import build_parser, cmd_serve

    executable, *argv = exec_start("onshi-clinic.service")
    assert executable == INSTALLED_BIN + "clinic-server"
    args = build_parser().parse_args(argv)
    assert args.func is cmd_serve
    assert (
        args.data_dir
        == "/var/lib/" + unit_file("onshi-clinic.service")["Service"]["StateDirectory"]
    )


def test_the_kiosk_command_is_a_real_kiosk_command() -> None:
    from kiosk.cli import build_parser, run_kiosk

    executable, *argv = exec_start("onshi-kiosk.service")
    assert executable == INSTALLED_BIN + "kiosk"
    args = build_parser().parse_args(argv)
    assert args.handler is run_kiosk
    assert str(args.config) == "/etc/onshi-kiosk/kiosk.toml"
