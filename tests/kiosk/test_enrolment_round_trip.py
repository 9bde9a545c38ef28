"""From ``clinic-server device issue --bundle`` to a patient's PIN check, with nothing copied by
hand: the bundle is issued from a real clinic server's data directory, installed by ``kiosk
enrol``, checked by ``kiosk doctor``, and a kiosk built from the installed ``kiosk.toml`` (plus
one drop-in with what this test machine changes: the outbox folder, mock pins, the dummy
video driver) checks a virtual card over TLS with the server on 127.0.0.1.

Uses pcscd and the vpcd reader: run under ``flock -o /tmp/onshi-vpcd.lock``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.app import Parts, build_kiosk
from kiosk.cli import main as kiosk
from kiosk.config import load_config
from testbed.environment import DEMO_READER, Environment, environment
from testbed.patient import Patient, visit
from testbed.screen_log import ScreenLog
from testbed.staff import StaffHand
from tests.support.enrolment import issue_bundle
from tests.support.kiosk_under_test import E2E_TIMEOUTS

UNIT = "reception-2"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, pcscd: str) -> Iterator[Environment]:
    with environment(tmp_path_factory.mktemp("enrol-e2e"), count=20, seed=20261201) as running:
        yield running


@pytest.fixture(scope="module")
def enrolled(env: Environment, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The unit's identity folder, enrolled from a bundle the server issued."""
    root = tmp_path_factory.mktemp("unit")
    bundle = root / f"{UNIT}.tar"
    options = ["--server-url", env.clinic.url, "--reader", DEMO_READER]
    assert issue_bundle(env.clinic.data_dir, UNIT, bundle, *options) == 0
    into = root / "identity"
    assert kiosk(["enrol", str(bundle), "--into", str(into)]) == 0
    dropins = into / "kiosk.toml.d"
    dropins.mkdir()
    (root / "data").mkdir(mode=0o700)
    timeouts = "\n".join(f"{k} = {v}" for k, v in E2E_TIMEOUTS.items())
    (dropins / "50-test-machine.toml").write_text(
        f'[outbox]\npath = "{root / "data" / "outbox.db"}"\n\n'
        '[server]\nlong_poll_s = 2.0\n\n[gpio]\nbackend = "mock"\n\n'
        '[display]\nfullscreen = false\nvideo_driver = "dummy"\n\n[voice]\nenabled = false\n\n'
        f"[timeouts]\n{timeouts}\n",
        encoding="utf-8",
    )
    return into


def test_doctor_finds_the_enrolled_identity_and_reaches_the_server(enrolled, capsys):
    capsys.readouterr()
    kiosk(["doctor", "--config", str(enrolled / "kiosk.toml"), "--json"])
    findings = {f["name"]: f for f in json.loads(capsys.readouterr().out)}
    assert findings["enrolment"]["state"] == "ok", findings["enrolment"]
    assert f"device {UNIT}" in findings["enrolment"]["detail"]
    assert findings["certificate"]["state"] == "ok", findings["certificate"]
    assert findings["clinic server"]["state"] == "ok", findings["clinic server"]


def test_a_kiosk_built_from_the_enrolled_files_checks_a_card_over_tls(env, enrolled):
    config = load_config(enrolled / "kiosk.toml")
    assert config.device.certificate == enrolled / "device.pem"
    assert config.server.url == env.clinic.url
    log = ScreenLog()
    unit = build_kiosk(config, Parts(display=log))
    staff = StaffHand(
        unit.hardware.pin_factory, config.gpio.staff_button, bounce_s=config.gpio.button_bounce_s
    )
    unit.start()
    try:
        card = env.population.card("valid-employee")
        result = visit(
            Patient(log, staff=staff.press, timeout_s=20.0), card, pin=card.load_profile().pin
        )
        assert result.shown == "ok", result.screens
        assert any(s["id"] == "result_ok" for s in result.screens)
    finally:
        unit.stop()
