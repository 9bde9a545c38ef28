"""``kiosk update``: the unit's signed A/B updates (docs/updates.md).

::

    kiosk update install BUNDLE|URL [--force] [--reboot]
    kiosk update status [--json]
    kiosk update reboot
    kiosk update confirm [--within SECONDS] [--config FILE]     (onshi-update-confirm.service)
    kiosk update backend get-primary | set-primary SLOT | get-state SLOT | set-state SLOT good|bad

``install`` exits 0 when the bundle was written (the next boot tries it), 3 when it was
refused (the reason on one line; nothing changed), 1 when writing failed. ``confirm`` exits 0
when there was nothing to try or the tried slot was committed, 1 when it was rolled back (the
unit is rebooting). ``backend`` is RAUC's custom boot-loader backend (its exit codes are
RAUC's: 0 done, 1 refused).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from kiosk.config import DEFAULT_CONFIG
from kiosk.update.boot_slots import open_store

EXIT_REFUSED = 3


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    update = subparsers.add_parser("update", help="signed A/B updates of this unit")
    commands = update.add_subparsers(dest="update_command", required=True)
    install = commands.add_parser("install", help="check a bundle, write it to the other slot")
    install.add_argument("bundle", metavar="BUNDLE|URL")
    install.add_argument("--force", action="store_true", help="also an older release")
    install.add_argument("--reboot", action="store_true", help="reboot into it when written")
    install.set_defaults(handler=run_install)
    status = commands.add_parser("status", help="the slots, their releases, the last try")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=run_status)
    reboot = commands.add_parser("reboot", help="reboot (into the slot to try, if any)")
    reboot.set_defaults(handler=run_reboot)
    confirm = commands.add_parser("confirm", help="commit or roll back the slot being tried")
    confirm.add_argument("--within", type=float, default=300.0, metavar="SECONDS")
    confirm.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    confirm.set_defaults(handler=run_confirm)
    backend = commands.add_parser("backend", help="RAUC's custom boot-loader backend")
    backend.add_argument(
        "action", choices=("get-primary", "set-primary", "get-state", "set-state", "get-current")
    )
    backend.add_argument("slot", nargs="?")
    backend.add_argument("state", nargs="?", choices=("good", "bad"))
    backend.set_defaults(handler=run_backend)


def _say(text: str) -> None:
    print(f"kiosk update: {text}", file=sys.stderr)


def run_backend(args: argparse.Namespace) -> int:
    from kiosk.errors import UpdateError
    from kiosk.update.trial import booted_slot

    try:
        _kind, store = open_store()
        slots = store.load()
        if args.action == "get-primary":
            print(slots.primary())
        elif args.action == "get-current":
            print(booted_slot())
        elif args.action == "get-state":
            print(slots.state(args.slot))
        elif args.action == "set-primary":
            store.save(slots.try_next(args.slot))
        elif args.action == "set-state" and args.state:
            change = slots.mark_good if args.state == "good" else slots.mark_bad
            store.save(change(args.slot))
        else:
            _say(f"{args.action}: a slot (and for set-state, good or bad) is needed")
            return 1
    except UpdateError as exc:
        _say(str(exc))
        return 1
    return 0


def run_install(args: argparse.Namespace) -> int:
    from kiosk.errors import UpdateError, UpdateRefused
    from kiosk.update.install import Unit, download, install
    from kiosk.update.release import read_release
    from kiosk.update.trial import booted_slot

    downloaded: Path | None = None
    try:
        bundle = Path(args.bundle)
        if args.bundle.startswith(("https://", "http://")):
            print(f"downloading {args.bundle}", flush=True)
            bundle = downloaded = download(args.bundle)
        _kind, store = open_store()
        installed = install(
            bundle,
            Unit(running=read_release(), slots=store.load(), booted=booted_slot()),
            force=args.force,
            progress=lambda line: print(line, flush=True),
        )
    except UpdateRefused as exc:
        _say(f"refused ({exc.reason}): {exc}")
        return EXIT_REFUSED
    except UpdateError as exc:
        _say(str(exc))
        return 1
    finally:
        if downloaded is not None:  # the data partition is not a bundle store
            downloaded.unlink(missing_ok=True)
    _publish()
    print(
        f"installed release {installed.info.release} in {installed.seconds:.1f} s; "
        "the next boot tries it once"
    )
    if args.reboot:
        return run_reboot(args)
    return 0


def _publish() -> None:
    """The slots' summary where the kiosk's heartbeat reads it (it cannot read root's files)."""
    from kiosk.errors import UpdateError
    from kiosk.update import slot_status

    try:
        slot_status.publish(slot_status.describe())
    except (UpdateError, OSError) as exc:
        _say(f"the status for the heartbeat was not written: {exc}")


def run_reboot(_args: argparse.Namespace) -> int:
    from kiosk.errors import UpdateError

    try:
        kind, store = open_store()
        slots = store.load()
    except UpdateError as exc:
        _say(str(exc))
        return 1
    # the Raspberry Pi's firmware boots [tryboot] only on a reboot that carries the flag
    argv = ["systemctl", "reboot"]
    if kind == "pi" and slots.trying:
        argv.append("0 tryboot")
    return subprocess.run(argv, check=False).returncode


def run_status(args: argparse.Namespace) -> int:
    from kiosk.errors import UpdateError
    from kiosk.update.slot_status import describe

    try:
        status = describe()
    except UpdateError as exc:
        _say(str(exc))
        return 1
    if args.json:
        print(json.dumps(status, indent=2, ensure_ascii=False))
    else:
        print(status["summary"])
    return 0


def run_confirm(args: argparse.Namespace) -> int:
    from contract.errors import OnshiError
    from kiosk.config import load_config
    from kiosk.doctor.run import run_checks
    from kiosk.errors import UpdateError
    from kiosk.supervision import configure_logging, stderr_is_journal
    from kiosk.update import trial
    from kiosk.update.release import read_release
    from kiosk.update.slot_status import note_release

    configure_logging(journald=stderr_is_journal())
    try:
        _kind, store = open_store()
        slots = store.load()
        booted = trial.booted_slot()
        release = str(read_release())
        note_release(booted, release)  # what this slot holds, for when the other is booted
    except (UpdateError, OSError) as exc:
        _say(f"cannot tell the slots apart: {exc}")  # onshi-update-deadline has the last word
        return 1
    _publish()
    if booted == slots.committed:
        print(f"slot {booted} ({release}) is the committed slot: nothing to try")
        return 0
    started = time.monotonic()
    verdict: list[tuple[bool, str]] = [(False, "the kiosk did not become READY")]

    def proven() -> bool:
        ready = trial.unit_active()
        try:
            findings = run_checks(load_config(args.config)) if ready else []
        except OnshiError as exc:  # a broken configuration in the slot: not proven
            verdict[0] = (False, f"kiosk doctor could not run: {exc}")
            return False
        verdict[0] = trial.decide(ready, findings)
        return verdict[0][0]

    commit = trial.wait_until(proven, args.within, poll_s=5.0)
    why = verdict[0][1]
    if commit:
        marked = subprocess.run(
            ["rauc", "status", "mark-good", "booted"], capture_output=True, text=True, check=False
        )
        if marked.returncode != 0:
            commit = False
            why = f"RAUC could not commit the slot: {marked.stderr.strip()[-200:]}"
    outcome = trial.Outcome(
        slot=booted,
        release=release,
        outcome="committed" if commit else "rolled_back",
        reason=why,
        at=trial.now_iso(),
        waited_s=round(time.monotonic() - started, 1),
    )
    trial.record(outcome)
    fields = {"UPDATE_OUTCOME": outcome.outcome, "UPDATE_SLOT": booted}
    if commit:
        trial.log.info("slot %s (%s) committed: %s", booted, release, why, extra=fields)
        _publish()
        trial.note_decided(outcome)
        return 0
    trial.log.error(
        "slot %s (%s) rolled back: %s; rebooting into slot %s",
        booted,
        release,
        why,
        slots.committed,
        extra=fields,
    )
    subprocess.run(["rauc", "status", "mark-bad", "booted"], check=False)
    trial.note_decided(outcome)
    subprocess.run(["systemctl", "reboot"], check=False)
    return 1
