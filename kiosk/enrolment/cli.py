"""``kiosk enrol`` and ``kiosk unenrolled``.

::

    kiosk enrol BUNDLE --into DIR [--again] [--owner USER --group GROUP]
    kiosk enrol --check BUNDLE
    kiosk unenrolled --reason missing|broken [--detail TEXT...] [--layout L] [--windowed]
                     [--gpio-backend lgpio|mock|auto] [--green N --amber N --red N --blue N]

``kiosk enrol`` prints one line and exits with:

    0  enrolled (or, with --check, the bundle passed every check)
    2  wrong usage: an unknown --owner or --group, DIR not a folder or holding other files
    3  the bundle is unusable (unreadable, truncated, tampered, expired, wrong config...)
    4  DIR holds an identity already and --again was not given
    5  DIR could not be written (read-only or full file system, permissions)

In every case but 0 nothing was changed. ``kiosk unenrolled`` runs until SIGTERM (exit 0).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from contract.device_bundle import BundleError
from kiosk.hw.config import BACKENDS, GpioConfig

EXIT_BROKEN = 3
EXIT_ENROLLED_ALREADY = 4
EXIT_INSTALL_FAILED = 5


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    enrol = subparsers.add_parser(
        "enrol", help="check an enrolment bundle and install it as this unit's identity"
    )
    enrol.add_argument("bundle", type=Path, metavar="BUNDLE", help="the bundle (a tar file)")
    enrol.add_argument(
        "--check", action="store_true", help="only check the bundle; install nothing"
    )
    enrol.add_argument(
        "--into", type=Path, metavar="DIR", help="the identity folder (made if missing)"
    )
    enrol.add_argument(
        "--again",
        action="store_true",
        help="replace the identity DIR holds; the old one is kept as DIR.replaced-TIME",
    )
    enrol.add_argument("--owner", default=None, metavar="USER", help="owner of the device key")
    enrol.add_argument(
        "--group", default=None, metavar="GROUP", help="group of every file (the kiosk's)"
    )
    enrol.set_defaults(handler=run_enrol)

    unenrolled = subparsers.add_parser(
        "unenrolled", help="the maintainer's screen and lights of a unit with no identity"
    )
    unenrolled.add_argument("--reason", choices=("missing", "broken"), required=True)
    unenrolled.add_argument(
        "--detail",
        nargs="*",
        default=None,
        metavar="TEXT",
        help="why the bundle is broken (several words are joined: a unit file may split it)",
    )
    unenrolled.add_argument("--layout", choices=("landscape", "portrait"), default="landscape")
    unenrolled.add_argument(
        "--windowed", action="store_true", help="a window instead of the full screen"
    )
    unenrolled.add_argument("--gpio-backend", choices=BACKENDS, default="lgpio")
    unenrolled.add_argument("--gpio-chip", type=int, default=None, metavar="N")
    defaults = GpioConfig()
    for lamp in ("green", "amber", "red", "blue"):
        unenrolled.add_argument(
            f"--{lamp}",
            type=int,
            default=getattr(defaults, lamp),
            metavar="BCM",
            help=f"the {lamp} LED's pin (default {getattr(defaults, lamp)})",
        )
    unenrolled.set_defaults(handler=run_unenrolled)


def _say(text: str) -> None:
    print(f"kiosk enrol: {text}", file=sys.stderr)


def run_enrol(args: argparse.Namespace) -> int:
    from kiosk.enrolment.checks import check_files, read_bundle
    from kiosk.enrolment.install import (
        AlreadyEnrolled,
        EnrolmentError,
        InstallFailed,
        Ownership,
        install,
    )

    if args.check == (args.into is not None):
        _say("give either --into DIR (install) or --check (check only)")
        return 2
    try:
        bundle = read_bundle(args.bundle)
        if args.check:
            with tempfile.TemporaryDirectory(prefix="kiosk-enrol-check-") as folder:
                checked = check_files(bundle, Path(folder))
            print(
                f"bundle of {bundle.manifest.device} is good (certificate valid until "
                f"{checked.not_after:%Y-%m-%d}, server {checked.config.server.url})"
            )
            return 0
        installed = install(
            bundle,
            args.into,
            again=args.again,
            ownership=Ownership.named(args.owner, args.group),
        )
    except BundleError as exc:
        _say(str(exc))  # one line: the first boot shows it on the screen
        return EXIT_BROKEN
    except AlreadyEnrolled as exc:
        _say(str(exc))
        return EXIT_ENROLLED_ALREADY
    except InstallFailed as exc:
        _say(str(exc))
        return EXIT_INSTALL_FAILED
    except EnrolmentError as exc:
        _say(str(exc))
        return 2
    kept = f"; the old identity is in {installed.backup}" if installed.backup else ""
    print(f"enrolled {bundle.manifest.device} into {installed.target}{kept}")
    return 0


def run_unenrolled(args: argparse.Namespace) -> int:
    from kiosk.enrolment.unenrolled import Reason, show_until_stopped
    from kiosk.supervision import configure_logging, stderr_is_journal
    from kiosk.ui.layouts import layout_named

    configure_logging(journald=stderr_is_journal())
    gpio = GpioConfig(
        backend=args.gpio_backend,
        chip=args.gpio_chip,
        green=args.green,
        amber=args.amber,
        red=args.red,
        blue=args.blue,
    )
    show_until_stopped(
        Reason(args.reason),
        " ".join(args.detail) if args.detail else None,
        layout_named(args.layout),
        gpio,
        fullscreen=not args.windowed,
    )
    return 0
