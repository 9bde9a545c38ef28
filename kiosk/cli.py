"""The ``kiosk`` command: one entry point, each sub-command registered by its own package.

Commands from outside the appliance (the testbed's ``demo``, ``bench transaction`` and
``bench outbox``) plug in through the entry points :data:`COMMAND_PLUGINS` and
``kiosk.bench.cli.BENCH_PLUGINS``; the appliance itself never imports them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

from contract.errors import OnshiError
from kiosk import __version__

#: Entry points that add ``kiosk`` commands (``add_parser(subparsers)``).
COMMAND_PLUGINS = "onshi_kiosk.commands"


def build_parser() -> argparse.ArgumentParser:
    from kiosk import config_cli
    from kiosk.bench import cli as bench_cli
    from kiosk.card import cli as card_cli
    from kiosk.doctor import cli as doctor_cli
    from kiosk.enrolment import cli as enrolment_cli
    from kiosk.hw import cli as hw_cli
    from kiosk.outbox import cli as outbox_cli
    from kiosk.sim import cli as sim_cli
    from kiosk.ui import cli as ui_cli
    from kiosk.update import cli as update_cli

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
    doctor_cli.add_parser(commands)
    config_cli.add_parser(commands)
    enrolment_cli.add_parser(commands)
    update_cli.add_parser(commands)
    run = commands.add_parser("run", help="the kiosk appliance: fullscreen touch UI (systemd)")
    run.add_argument(
        "--config",
        type=Path,
        default=Path("/etc/onshi-kiosk/kiosk.toml"),
        help="the kiosk's TOML file (default /etc/onshi-kiosk/kiosk.toml)",
    )
    run.set_defaults(handler=run_kiosk)
    for plugin in entry_points(group=COMMAND_PLUGINS):
        plugin.load()(commands)  # the testbed's ``demo``, when it is installed
    return parser


def run_kiosk(args: argparse.Namespace) -> int:
    from kiosk import app

    return app.run(args.config)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except OnshiError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
