"""``kiosk voice ...``: render the voice guidance at build time.

::

    kiosk voice build --out DIR [--lang ja --lang en ...] [--only 'pin_*' ...] [--jobs N]
    kiosk voice list [--lang ja]
    kiosk voice measure DIR [--lang ja ...] [--only 'pin_*' ...]

``build`` renders every prompt in every language (or the ones the filters name) into
``DIR/<language>/<prompt>.wav`` with ``DIR/manifest.json``; files whose text and engine did
not change are kept as they are. A full build (no filter) also deletes files no prompt names
any more. The kiosk reads ``DIR`` from ``[voice] dir``. Exit codes: 0 done, 2 an engine is
missing or failed.

``measure`` prints, for each built prompt, its length, its peak and its gated loudness (dB
full scale, see :mod:`kiosk.ui.voice_audio`), then per engine the spread of loudness, the
highest peak and the longest prompt: the figures behind "the two engines sound equally loud,
nothing clips, no prompt runs past 8 s". Exit code 1 when a prompt clips, runs too long or is
missing.
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
    measuring = commands.add_parser(
        "measure", help="print length, peak and loudness of each built prompt, per engine"
    )
    measuring.add_argument("dir", type=Path, help="a folder `kiosk voice build` wrote")
    measuring.set_defaults(handler=run_measure)
    for command in (build, listing, measuring):
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


def run_measure(args: argparse.Namespace) -> int:
    from kiosk.ui import voice, voice_audio

    by_engine: dict[str, list[tuple[str, voice_audio.Level]]] = {}
    problems = []
    print(f"{'prompt':44} {'seconds':>7} {'peak dB':>8} {'loudness dB':>11}")
    for job in voice.plan(_languages(args), args.only):
        path = args.dir / job.path
        if not path.is_file():
            problems.append(f"{job.path}: missing (run `kiosk voice build --out {args.dir}`)")
            continue
        try:
            level = voice_audio.measure(voice_audio.read_pcm(path))
        except voice_audio.VoiceAudioError as exc:
            problems.append(str(exc))
            continue
        by_engine.setdefault(job.engine.name, []).append((job.path, level))
        print(f"{job.path:44} {level.seconds:7.2f} {level.peak_db:8.1f} {level.loudness_db:11.1f}")
        if level.peak_db > voice_audio.PEAK_CEILING_DB + 0.05:
            problems.append(f"{job.path}: peak {level.peak_db:.1f} dB clips")
        if level.seconds > voice_audio.MAX_PROMPT_S:
            problems.append(f"{job.path}: {level.seconds:.1f} s, over {voice_audio.MAX_PROMPT_S} s")
    print()
    for engine, rows in sorted(by_engine.items()):
        loud = [level.loudness_db for _, level in rows]
        longest = max(rows, key=lambda row: row[1].seconds)
        print(
            f"{engine}: {len(rows)} prompts, loudness {min(loud):.1f}..{max(loud):.1f} dB "
            f"(mean {sum(loud) / len(loud):.1f}, target {voice_audio.TARGET_LOUDNESS_DB}), "
            f"highest peak {max(level.peak_db for _, level in rows):.1f} dB "
            f"(ceiling {voice_audio.PEAK_CEILING_DB}), "
            f"longest {longest[1].seconds:.1f} s ({longest[0]})"
        )
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems else 0
