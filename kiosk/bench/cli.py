"""``kiosk bench ...``: benchmarks that print figures (never timed tests)."""

from __future__ import annotations

import argparse
import json

from kiosk.bench import outbox, transaction


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = subparsers.add_parser("bench", help="measure speed and memory")
    commands = bench.add_subparsers(dest="bench_command", required=True)
    card = commands.add_parser(
        "card", help="APDUs and time of a probe and a PIN-and-sign flow through pcscd"
    )
    card.add_argument("--json", action="store_true", help="print JSON")
    card.add_argument("--runs", type=int, default=5, help="runs per flow (default 5)")
    card.add_argument("--port", type=int, default=35963, help="vpcd port (default 35963)")
    card.add_argument("--reader", default="Virtual PCD 00 00", help="the vpcd reader's name")
    card.set_defaults(handler=run_card)
    outbox.add_parser(commands)
    transaction.add_parser(commands)


def run_card(args: argparse.Namespace) -> int:
    from kiosk.bench import card

    figures = card.run(runs=args.runs, port=args.port, reader=args.reader)
    print(json.dumps(figures, indent=2) if args.json else card.to_text(figures))
    return 0
