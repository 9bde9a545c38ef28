"""The ``kiosk`` command: one entry point, each sub-command registered by its own package."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from kiosk import __version__
from kiosk.errors import KioskError


def build_parser() -> argparse.ArgumentParser:
    from kiosk.bench import cli as bench_cli
    from kiosk.card import cli as card_cli
    from kiosk.outbox import cli as outbox_cli
    from kiosk.sim import cli as sim_cli

    parser = argparse.ArgumentParser(
        prog="kiosk", description="Onshi Kiosk: the insurance eligibility check at the counter"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    card_cli.add_parser(commands)
    sim_cli.add_parser(commands)
    bench_cli.add_parser(commands)
    outbox_cli.add_parser(commands)
    demo = commands.add_parser(
        "demo", help="generate virtual cards and walk them through the card layer over PC/SC"
    )
    demo.add_argument("--out", type=Path, help="keep the generated population in this folder")
    demo.set_defaults(handler=run_demo)
    return parser


def run_demo(args: argparse.Namespace) -> int:
    from kiosk import card_demo

    return card_demo.run(args.out)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except KioskError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
