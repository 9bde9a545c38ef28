"""The testbed's commands, plugged into ``kiosk`` through entry points (see ``pyproject.toml``).

``kiosk demo`` is here; the benchmarks register themselves from ``testbed.bench``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_demo(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers ``demo`` under ``kiosk``."""
    demo = subparsers.add_parser(
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


def run_demo(args: argparse.Namespace) -> int:
    if args.card_only:
        from testbed import card_demo

        return card_demo.run(args.out)
    from testbed import demo

    return demo.run(args)
