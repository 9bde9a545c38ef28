"""``kiosk voice ...``: render the voice guidance at build time.

::

    kiosk voice build --out DIR [--lang ja --lang en ...] [--only 'pin_*' ...] [--jobs N]
    kiosk voice list [--lang ja]

``build`` renders every prompt in every language (or the ones the filters name) into
``DIR/<language>/<prompt>.wav`` with ``DIR/manifest.json``; files whose text and engine did
not change are kept as they are. A full build (no filter) also deletes files no prompt names
any more. The kiosk reads ``DIR`` from ``[voice] dir``. Exit codes: 0 done, 2 an engine is
missing or failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kiosk.flow.screens import Language


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    voice = subparsers.add_parser("voice", help="render the spoken guidance (build time)")
    commands = voice.add_subparsers(dest="voice_command", required=True)
    build = commands.add_parser("build", help="render the prompts into WAV files")
    build.add_argument("--out", type=Path, required=True, help="folder for the WAV files")
    build.add_argument("--jobs", type=int, default=None, help="parallel renders (default: CPUs)")
    build.set_defaults(handler=run_build)
    listing = commands.add_parser("list", help="print each prompt and its text")
    listing.set_defaults(handler=run_list)
    for command in (build, listing):
        command.add_argument(
            "--lang",
            action="append",
            choices=[language.value for language in Language],
            help="only this language (repeatable; default: all)",
        )
        command.add_argument(
            "--only",
            action="append",
            default=[],
            metavar="PATTERN",
            help="only prompts whose name matches (shell pattern, repeatable), e.g. 'pin_*'",
        )


def _languages(args: argparse.Namespace) -> list[Language] | None:
    return [Language(value) for value in args.lang] if args.lang else None


def run_build(args: argparse.Namespace) -> int:
    from kiosk.ui import voice

    jobs = voice.plan(_languages(args), args.only)
    if not jobs:
        print("kiosk voice: no prompt matches", file=sys.stderr)
        return 2
    full = not args.lang and not args.only
    report = voice.build(args.out, jobs, workers=args.jobs, prune=full)
    print(
        f"voice: {len(report.rendered)} rendered, {len(report.unchanged)} unchanged, "
        f"{len(report.removed)} removed, in {args.out}"
    )
    return 0


def run_list(args: argparse.Namespace) -> int:
    from kiosk.ui import voice

    for job in voice.plan(_languages(args), args.only):
        print(f"{job.path}\t{job.text}")
    return 0
