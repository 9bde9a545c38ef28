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
    from kiosk.hw import cli as hw_cli
    from kiosk.outbox import cli as outbox_cli
    from kiosk.sim import cli as sim_cli
    from kiosk.ui import cli as ui_cli

    parser = argparse.ArgumentParser(
        prog="kiosk", description="Onshi Kiosk: the insurance eligibility check at the counter"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    card_cli.add_parser(commands)
    sim_cli.add_parser(commands)
    bench_cli.add_parser(commands)
    outbox_cli.add_parser(commands)
    hw_cli.add_parser(commands)
    ui_cli.add_parser(commands)
    run = commands.add_parser("run", help="the kiosk appliance: fullscreen touch UI (systemd)")
    run.add_argument(
        "--config",
        type=Path,
        default=Path("/etc/onshi-kiosk/kiosk.toml"),
        help="the kiosk's TOML file (default /etc/onshi-kiosk/kiosk.toml)",
    )
    run.set_defaults(handler=run_kiosk)
    demo = commands.add_parser(
        "demo",
        help="everything on one machine: a clinic server, virtual cards and the kiosk in a window",
        description="A clinic server with the simulated national system and a generated "
        "population, a virtual card on the vpcd reader and the kiosk in a window: keys place "
        "and remove cards of each profile. Without a display (or with --headless) it walks "
        "one patient of every outcome through the real stack and writes screenshots and a "
        "transcript.",
    )
    demo.add_argument(
        "--card-only",
        action="store_true",
        help="the card layer alone: probe and PIN-and-sign rounds over PC/SC (the first demo)",
    )
    demo.add_argument("--headless", action="store_true", help="no window: the scripted scenario")
    demo.add_argument(
        "--scenario",
        default="all",
        help='"all" (one patient per outcome) or comma-separated outcome names',
    )
    demo.add_argument("--out", type=Path, help="where screenshots, transcript (and cards) go")
    demo.add_argument(
        "--pace",
        choices=["instant", "patient"],
        default="instant",
        help="headless typing: at once, or with a patient's pauses between keys",
    )
    demo.add_argument(
        "--layout", choices=["landscape", "portrait"], default="landscape", help="screen layout"
    )
    demo.set_defaults(handler=run_demo)
    return parser


def run_kiosk(args: argparse.Namespace) -> int:
    from kiosk import app

    return app.run(args.config)


def run_demo(args: argparse.Namespace) -> int:
    if args.card_only:
        from kiosk import card_demo

        return card_demo.run(args.out)
    from kiosk import demo

    return demo.run(args)


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
