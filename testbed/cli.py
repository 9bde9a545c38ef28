"""The testbed's commands, plugged into ``kiosk`` through entry points (see ``pyproject.toml``).

``kiosk demo`` is here; the benchmarks register themselves from ``testbed.bench``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
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
        help='"all" (one patient per outcome) or comma-separated outcome names '
        "(an unknown name lists the valid ones)",
    )
    demo.add_argument(
        "--out",
        type=Path,
        help="where screenshots, transcript (and cards) go: a new or empty folder, or the "
        "folder of an earlier demo run (which is emptied first); any other folder is refused",
    )
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


#: The file every demo run leaves in its ``--out`` folder: a later run may empty that folder.
OUT_MARK = ".onshi-demo-output"


class DemoArgumentError(Exception):
    """A ``kiosk demo`` argument that cannot be used: the message says why and what to do."""


def scenario_outcomes(scenario: str) -> list[str] | None:
    """The outcomes ``--scenario`` names (None: all of them), each checked against the
    population's outcomes."""
    from kiosk.sim.outcomes import OUTCOMES

    if scenario.strip() == "all":
        return None
    names = [name.strip() for name in scenario.split(",") if name.strip()]
    valid = [outcome.name for outcome in OUTCOMES]
    unknown = [name for name in names if name not in valid]
    if unknown or not names:
        listed = "\n  ".join(["all", *valid])
        what = ", ".join(repr(name) for name in unknown) if unknown else "no outcome"
        raise DemoArgumentError(
            f"--scenario: unknown {what}; valid scenarios (or several, comma-separated):\n"
            f"  {listed}"
        )
    return names


def prepare_out(out: Path) -> None:
    """Make ``out`` ready for a demo run: created if new; emptied if an earlier demo run
    wrote it (it holds :data:`OUT_MARK`); refused if it holds anything else, so the demo
    never deletes a file it did not write."""
    if out.exists() and not out.is_dir():
        raise DemoArgumentError(f"--out {out}: this is a file, not a folder")
    if out.is_dir():
        entries = list(out.iterdir())
        if entries and not (out / OUT_MARK).is_file():
            raise DemoArgumentError(
                f"--out {out}: the folder is not empty and no earlier demo run wrote it "
                f"(it has no {OUT_MARK}); choose a new or empty folder"
            )
        for entry in entries:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / OUT_MARK).write_text(
        "written by `kiosk demo`: a later run empties this folder\n", encoding="utf-8"
    )


def run_demo(args: argparse.Namespace) -> int:
    try:
        if not args.card_only:
            args.outcomes = scenario_outcomes(args.scenario)
        if args.out is not None:
            prepare_out(args.out)
    except DemoArgumentError as exc:
        print(f"kiosk demo: {exc}", file=sys.stderr)
        return 2
    if args.card_only:
        from testbed import card_demo

        return card_demo.run(args.out)
    from testbed import demo

    return demo.run(args)
