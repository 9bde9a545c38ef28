"""A whole population through the kiosk, logging as the appliance does: run as a program.

``python -m tests.support.journal_population ROOT OUT``: generates a population and starts a
clinic server in ``ROOT`` (:func:`testbed.environment.environment`, as ``kiosk demo`` does),
sets up logging as ``kiosk run`` does (:func:`kiosk.supervision.configure_logging`, to the
journal when stderr is its stream), and walks one patient of every outcome through the kiosk
(:func:`testbed.demo.run_scenario`). The population stays in ``ROOT/population`` so a test
can search the journal for every person in it; ``OUT/transcript.jsonl`` says what each saw.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path


def main(root: Path, out: Path) -> int:
    from kiosk.supervision import configure_logging, stderr_is_journal
    from testbed.demo import run_scenario
    from testbed.environment import environment

    os.environ["SDL_VIDEODRIVER"] = "dummy"
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    configure_logging(journald=stderr_is_journal(), level=logging.INFO)
    with environment(root, count=20, seed=20261201) as env:
        visits = run_scenario(env, out, say=lambda line: print(line, file=sys.stderr))
    return 0 if all(v.shown == v.expected for v in visits) else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
