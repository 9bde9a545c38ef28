"""``kiosk bench ...``: benchmarks that print figures (never timed tests)."""

from __future__ import annotations

import argparse
import json
from importlib.metadata import entry_points
from pathlib import Path

#: Entry points that add ``kiosk bench`` commands (``add_parser(subparsers)``).
BENCH_PLUGINS = "onshi_kiosk.bench"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = subparsers.add_parser("bench", help="measure speed and memory")
    commands = bench.add_subparsers(dest="bench_command", required=True)
    card = commands.add_parser(
        "card", help="APDUs and time of a probe and a PIN-and-sign flow through pcscd"
    )
    card.add_argument("--json", action="store_true", help="print JSON")
    card.add_argument("--runs", type=int, default=5, help="runs per flow (default 5)")
    card.add_argument("--port", type=int, default=35963, help="vpcd port (default 35963)")
    card.add_argument(
        "--reader", default="Virtual PCD 00 00", help="the reader's name (default: vpcd's)"
    )
    card.add_argument(
        "--card-on-reader",
        action="store_true",
        help="probe the card already on --reader (a real reader at the counter): no PIN, "
        "no try spent; without it a virtual card is inserted on vpcd",
    )
    card.set_defaults(handler=run_card)
    doctor = commands.add_parser(
        "doctor", help="how long `kiosk doctor` takes: median and max over N runs"
    )
    doctor.add_argument("--json", action="store_true", help="print JSON")
    doctor.add_argument("--runs", type=int, default=10, help="runs (default 10)")
    doctor.add_argument(
        "--config",
        type=Path,
        default=Path("/etc/onshi-kiosk/kiosk.toml"),
        help="the kiosk's TOML file (default /etc/onshi-kiosk/kiosk.toml)",
    )
    doctor.set_defaults(handler=run_doctor)
    for plugin in entry_points(group=BENCH_PLUGINS):
        plugin.load()(commands)  # the testbed's ``outbox`` and ``transaction``


def run_card(args: argparse.Namespace) -> int:
    from kiosk.bench import card

    if args.card_on_reader:
        on_reader = card.run_on_reader(runs=args.runs, reader=args.reader)
        print(json.dumps(on_reader, indent=2) if args.json else card.reader_to_text(on_reader))
        return 0
    figures = card.run(runs=args.runs, port=args.port, reader=args.reader)
    print(json.dumps(figures, indent=2) if args.json else card.to_text(figures))
    return 0


def run_doctor(args: argparse.Namespace) -> int:
    from kiosk.bench import doctor

    figures = doctor.run(args.config, runs=max(1, args.runs))
    print(json.dumps(figures, indent=2) if args.json else doctor.to_text(figures))
    return 0
