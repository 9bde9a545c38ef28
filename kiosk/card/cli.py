"""``kiosk card ...``: commands for a maintainer at the counter."""

from __future__ import annotations

import argparse
import json

from kiosk.card.probe import probe_reader


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    card = subparsers.add_parser("card", help="talk to the card on the reader")
    commands = card.add_subparsers(dest="card_command", required=True)
    probe = commands.add_parser(
        "probe",
        help="identify the card and show its certificate and PIN tries left (spends no try)",
    )
    probe.add_argument("--reader", help="reader name (default: the first with a card)")
    probe.add_argument("--json", action="store_true", help="print JSON")
    probe.set_defaults(handler=run_probe)


def run_probe(args: argparse.Namespace) -> int:
    result = probe_reader(args.reader)
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    else:
        print(result.to_text())
    return 0
