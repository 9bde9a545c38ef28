"""``kiosk doctor [--config FILE] [--json]``: is this kiosk ready to serve patients?

One line per check (ok / warning / failed) with what to do; ``--json`` prints a list of
``{name, state, detail, advice}``. Exit status 1 when a check failed, 0 otherwise (warnings
included), 2 when the configuration cannot be read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kiosk.config import DEFAULT_CONFIG


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = subparsers.add_parser(
        "doctor", help="check the reader, screen, pins, clock, server, certificate, outbox..."
    )
    doctor.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help=f"default {DEFAULT_CONFIG}"
    )
    doctor.add_argument("--json", action="store_true", help="print JSON")
    doctor.set_defaults(handler=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    from contract.self_check import exit_status, to_json, to_text
    from kiosk.config import load_config
    from kiosk.doctor.run import run_checks

    findings = run_checks(load_config(args.config))
    print(to_json(findings) if args.json else to_text(findings))
    return exit_status(findings)
