"""``kiosk sim ...``: generate a population, put a virtual card on a vpcd reader.

``add_parser(subparsers)`` registers ``sim`` on the kiosk's argparse sub-commands; each
sub-command stores its handler as ``handler`` (``args.handler(args) -> int``, the kiosk's
convention)::

    kiosk sim population --out DIR --count N [--seed S] [--today YYYY-MM-DD]
    kiosk sim card PROFILE [--host 127.0.0.1] [--port 35963] [--realistic-timing]

``python -m kiosk.sim.cli sim ...`` runs the same without the kiosk's own entry point.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import date
from pathlib import Path
from types import FrameType
from typing import Any

from kiosk.sim.card import VirtualJpkiCard
from kiosk.sim.outcomes import OUTCOMES
from kiosk.sim.population import generate_population
from kiosk.sim.profile import CardProfile, ProfileError, TimingModel
from kiosk.sim.vpcd import DEFAULT_HOST, READER_0_PORT, VpcdUnavailable, insert


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``sim`` and its sub-commands on an argparse ``add_subparsers()`` object."""
    sim: argparse.ArgumentParser = subparsers.add_parser(
        "sim", help="the simulated cards: populations and virtual card insertion"
    )
    sim.set_defaults(handler=lambda _args: _usage(sim))
    commands = sim.add_subparsers(title="commands", metavar="COMMAND")

    population = commands.add_parser(
        "population",
        help="write a CA, card profiles and insured-person records",
        description=(
            f"Write a simulated JPKI CA, N card profiles and their insured-person records. "
            f"The cards cycle through {len(OUTCOMES)} outcomes, so N >= {len(OUTCOMES)} "
            "covers them all. Formats: kiosk/sim/FORMATS.md."
        ),
    )
    population.add_argument("--out", type=Path, required=True, help="folder to write into")
    population.add_argument("--count", type=int, required=True, help="number of cards")
    population.add_argument("--seed", type=int, default=None, help="for a reproducible spread")
    population.add_argument(
        "--today",
        type=date.fromisoformat,
        default=None,
        help="the day ages, dates and expiries are computed from (default: today, JST)",
    )
    population.set_defaults(handler=run_population)

    card = commands.add_parser(
        "card",
        help="insert a virtual card into a vpcd reader until stopped",
        description="Insert the card until SIGTERM or Ctrl-C, which removes it.",
    )
    card.add_argument("profile", type=Path, help="a card profile (.toml)")
    card.add_argument("--host", default=DEFAULT_HOST, help="vpcd host (default %(default)s)")
    card.add_argument(
        "--port",
        type=int,
        default=READER_0_PORT,
        help="vpcd port: 35963 = Virtual PCD 00 00, 35964 = Virtual PCD 00 01",
    )
    card.add_argument(
        "--realistic-timing",
        action="store_true",
        help="about 10 ms per APDU, 424 kbit/s, 0.35 s per signature",
    )
    card.set_defaults(handler=run_card)
    return sim


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def run_population(args: argparse.Namespace) -> int:
    """``kiosk sim population``: write the population and say where."""
    if args.count < 1:
        print("kiosk sim population: --count must be at least 1", file=sys.stderr)
        return 2
    try:
        population = generate_population(args.out, args.count, seed=args.seed, today=args.today)
    except (OSError, ValueError) as exc:
        print(f"kiosk sim population: {exc}", file=sys.stderr)
        return 1
    outcomes = len({card.outcome for card in population.cards})
    print(
        f"wrote {len(population.cards)} cards ({outcomes} outcomes) to {population.root}: "
        "ca/, cards/, insured.jsonl, population.json"
    )
    return 0


def run_card(args: argparse.Namespace, *, stop: threading.Event | None = None) -> int:
    """``kiosk sim card``: insert until SIGTERM/SIGINT (or ``stop``), then remove the card."""
    try:
        profile = CardProfile.load(args.profile)
    except ProfileError as exc:
        print(f"kiosk sim card: {exc}", file=sys.stderr)
        return 1
    timing = TimingModel.realistic() if args.realistic_timing else None
    stop = stop or threading.Event()
    previous = _on_signals(stop)
    try:
        try:
            slot = insert(VirtualJpkiCard(profile), host=args.host, port=args.port, timing=timing)
        except VpcdUnavailable as exc:
            print(f"kiosk sim card: {exc}", file=sys.stderr)
            return 1
        print(
            f"inserted {profile.id} ({profile.kind}) on {args.host}:{args.port}; "
            "Ctrl-C or SIGTERM removes it",
            flush=True,
        )
        try:
            while not stop.wait(0.2) and not slot.removed:
                pass
        finally:
            slot.remove()
        print(f"removed {profile.id}", flush=True)
        return 0
    finally:
        _restore_signals(previous)


_Handler = Any  # what signal.signal returns: a callable, an int, or None


def _on_signals(stop: threading.Event) -> dict[int, _Handler]:
    """Make SIGTERM and SIGINT set ``stop`` (only possible in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    return {number: signal.signal(number, handler) for number in (signal.SIGTERM, signal.SIGINT)}


def _restore_signals(previous: dict[int, _Handler]) -> None:
    for number, handler in previous.items():
        signal.signal(number, handler)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m kiosk.sim.cli sim ...``."""
    parser = argparse.ArgumentParser(prog="kiosk")
    add_parser(parser.add_subparsers(title="commands", metavar="COMMAND"))
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return 2
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
