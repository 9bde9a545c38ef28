"""``kiosk uploader ...``: the uploader process and its maintenance commands.

::

    kiosk uploader run --config /etc/onshi-kiosk/kiosk.toml     the process (systemd unit)
    kiosk uploader status --config FILE [--json]                 uploader running, last success
                                                                 and error, backlog, alarms
    kiosk uploader unpark --config FILE                          queue parked records again

``run`` stops cleanly on SIGTERM or SIGINT (the batch in flight finishes or is sent again
next time); SIGKILL loses nothing either. Exit codes: 0 done, 2 a configuration or storage
problem (printed, without any payload).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from kiosk.outbox.config import KioskOutboxSettings, load_settings
from kiosk.outbox.queue import Outbox
from kiosk.outbox.status import STALE_AFTER_S

if TYPE_CHECKING:
    from contract.device_signing import DeviceIdentity
    from kiosk.outbox.uploader import Uploader

DEFAULT_CONFIG = Path("/etc/onshi-kiosk/kiosk.toml")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    uploader = subparsers.add_parser(
        "uploader", help="send the sealed outbox to the clinic server (own process)"
    )
    commands = uploader.add_subparsers(dest="uploader_command", required=True)
    run = commands.add_parser("run", help="run the uploader until stopped")
    run.add_argument("--until-empty", action="store_true", help="stop once the queue is empty")
    run.set_defaults(handler=run_uploader)
    status = commands.add_parser(
        "status", help="whether an uploader runs, its last success and error, the queue, alarms"
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument(
        "--stale-after",
        type=float,
        default=STALE_AFTER_S,
        metavar="SECONDS",
        help=f"alarm when the oldest queued record is older (default {STALE_AFTER_S:g})",
    )
    status.set_defaults(handler=show_status)
    unpark = commands.add_parser("unpark", help="queue the parked records again")
    unpark.set_defaults(handler=unpark_records)
    for command in (run, status, unpark):
        command.add_argument(
            "--config", type=Path, default=DEFAULT_CONFIG, help=f"default {DEFAULT_CONFIG}"
        )


def open_outbox(settings: KioskOutboxSettings, device_id: str) -> Outbox:
    return settings.outbox.open(device_id)


def _device_id(settings: KioskOutboxSettings) -> str:
    from contract.errors import ConfigError

    if settings.uploader is None:
        raise ConfigError("[server] and [device] are needed to know the device")
    return settings.uploader.access.device.identity().device_id


def run_uploader(args: argparse.Namespace) -> int:
    from contract.errors import ConfigError

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = load_settings(args.config)
    if settings.uploader is None:
        raise ConfigError(f"{args.config}: [server] and [device] are needed to upload")
    identity = settings.uploader.access.device.identity()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _upload(settings, identity, stop, until_empty=args.until_empty)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def open_uploader(settings: KioskOutboxSettings, identity: DeviceIdentity) -> Iterator[Uploader]:
    """The uploader ``settings`` describe: the device's outbox, sent through the kiosk's clinic
    client (the same as the flow's, with the configured ``[server]`` timeouts)."""
    from kiosk.clinic_client import open_clinic_client
    from kiosk.outbox.uploader import Uploader

    up = settings.uploader
    assert up is not None
    with (
        open_outbox(settings, identity.device_id) as outbox,
        open_clinic_client(up.access.server, up.access.device, identity) as client,
    ):
        yield Uploader(outbox, client, up.policy, state_file=up.state_file)


def _upload(
    settings: KioskOutboxSettings,
    identity: DeviceIdentity,
    stop: threading.Event,
    *,
    until_empty: bool,
) -> int:
    from kiosk.outbox.running import hold_uploader_lock
    from kiosk.supervision import Notifier

    # the outbox first: a missing data folder is reported as such, not as a missing lock
    with open_uploader(settings, identity) as uploader, hold_uploader_lock(settings.outbox.path):
        notifier = Notifier.from_env()
        assert settings.uploader is not None
        server = settings.uploader.access.server.url
        notifier.ready(f"uploading {identity.device_id}'s outbox to {server}")
        try:
            uploader.run(stop, until_empty=until_empty)
        finally:
            notifier.stopping()
    return 0


def _when(wall_ns: int | None, now_ns: int) -> str:
    if wall_ns is None:
        return "never"
    import datetime as dt

    moment = dt.datetime.fromtimestamp(wall_ns / 1e9).astimezone()
    return f"{moment:%Y-%m-%d %H:%M:%S %z} ({_age((now_ns - wall_ns) / 1e9)} ago)"


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def show_status(args: argparse.Namespace) -> int:
    import time

    from kiosk.outbox.running import uploader_pid, uploader_running

    settings = load_settings(args.config)
    with open_outbox(settings, _device_id(settings)) as outbox:
        status = outbox.status()
        reasons = outbox.parked_reasons()
    now_ns = time.time_ns()
    running = uploader_running(settings.outbox.path)
    pid = uploader_pid(settings.outbox.path) if running else None
    alarms = status.alarms + status.backlog_alarms(
        uploader_running=running, now_ns=now_ns, stale_after_s=args.stale_after
    )
    age = status.oldest_age_s(now_ns)
    doc = status.to_json()
    doc["alarms"] = list(alarms)
    doc["uploader_running"] = running
    doc["uploader_pid"] = pid
    doc["oldest_age_s"] = None if age is None else round(age, 1)
    doc["parked_reasons"] = [{"reason": r, "records": n} for r, n in reasons]
    if settings.uploader is not None and settings.uploader.state_file is not None:
        try:
            doc["uploader"] = json.loads(settings.uploader.state_file.read_text())
        except (OSError, ValueError):
            doc["uploader"] = None
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    error = "none"
    if status.last_error is not None:
        error = f"{status.last_error} at {_when(status.last_error_wall_ns, now_ns)}"
    print(f"device        {status.device_id}")
    shown_pid = pid if pid is not None else "?"
    print(f"uploader      {f'running (pid {shown_pid})' if running else 'not running'}")
    print(f"last success  {_when(status.last_upload_wall_ns, now_ns)}")
    print(f"last error    {error}")
    print(f"queued        {status.records} records, {status.bytes} bytes")
    print(f"oldest        {'-' if age is None else _age(age) + ' old'}")
    print(f"fill          {status.fill:.1%} of {status.max_bytes} bytes ({status.level})")
    print(f"parked        {status.parked}")
    print(f"refused       {status.refused}")
    print(f"clock back    {status.clock_back} times")
    print(f"quarantined   {', '.join(status.quarantine_files) or 'none'}")
    print(f"alarms        {', '.join(alarms) or 'none'}")
    for reason, n in reasons:
        print(f"  parked {n}: {reason}")
    for alarm in alarms:
        advice = ALARM_ADVICE.get(alarm)
        if advice:
            print(f"  {alarm}: {advice}")
    return 0


#: What to do about each alarm (printed under the status).
ALARM_ADVICE = {
    "uploader.not_running": "records wait and no uploader sends them: "
    "systemctl start onshi-kiosk-uploader (journalctl -u onshi-kiosk-uploader says why it stopped)",
    "outbox.stale": "the oldest record waits too long: see the last error, and `kiosk doctor`",
    "uploader.failing": "the last attempt failed: `kiosk doctor` checks the server and the "
    "device certificate",
    "outbox.parked": "the server refused records for good: see the reasons; "
    "`kiosk uploader unpark` queues them again",
    "outbox.warning": "the outbox is filling up: is the uploader sending?",
    "outbox.full": "the outbox is full and refuses records: get the uploader sending",
}


def unpark_records(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    with open_outbox(settings, _device_id(settings)) as outbox:
        n = outbox.unpark()
    print(f"{n} records queued again")
    return 0
