"""A real systemd-journald of the test's own, and a program whose stderr is its stream.

There is no systemd as PID 1 here (a container), so no journald and no ``systemd-run``. But
``systemd-journald`` itself runs fine as a plain process: :func:`run_under_journald` starts
one in a private mount namespace (``unshare --mount``, as root), with tmpfs over
``/run/systemd`` (its sockets), ``/run/log`` and ``/var/log/journal`` (its files), so neither
the machine's journal nor other tests see it. Inside, the program runs as systemd runs a
service: its stdout and stderr are a stream connected to journald's ``stdout`` socket (with
the stream header systemd sends) and ``JOURNAL_STREAM`` names that stream, so
:func:`kiosk.supervision.stderr_is_journal` is true and the kiosk logs through
systemd-python's ``journal.send`` to ``/run/systemd/journal/socket``: the real library, the
real protocol, the real daemon. Afterwards ``journalctl -o json`` with field matches reads
the entries back, as a maintainer would (``journalctl NOTICE=K-201``); only ``-u UNIT``
cannot be shown, since that field comes from the cgroup systemd puts a service in.

Run as a module (``python -m tests.support.journald SPEC``) it is the part that runs inside
the namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import PROJECT_ROOT

JOURNALD_CANDIDATES = ("/lib/systemd/systemd-journald", "/usr/lib/systemd/systemd-journald")
#: the folders journald writes, each hidden under a tmpfs of the namespace's own
PRIVATE_DIRS = ("/run/systemd", "/run/log", "/var/log/journal")


@dataclass
class JournaldRun:
    """What the program did, and what journalctl found for each query."""

    returncode: int
    #: one list of entries (journalctl -o json) per query, in the order asked
    found: list[list[dict[str, Any]]]
    #: every entry of the private journal (this run's only), as JSON text, for searching
    everything: str


def journald_binary() -> str:
    for path in JOURNALD_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    pytest.fail("systemd-journald is missing: install Debian's systemd package", pytrace=False)


def run_under_journald(
    argv: Sequence[str],
    work: Path,
    *,
    queries: Sequence[Sequence[str]] = (),
    env: Mapping[str, str] | None = None,
    identifier: str = "onshi-test",
    timeout_s: float = 120.0,
) -> JournaldRun:
    """Run ``argv`` with its stderr on a private journald; the entries each query matches."""
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        pytest.fail("a private journald needs root and unshare (util-linux)", pytrace=False)
    journald_binary()
    work.mkdir(parents=True, exist_ok=True)
    spec = work / "journald-spec.json"
    result = work / "journald-result.json"
    spec.write_text(
        json.dumps(
            {
                "argv": list(argv),
                "env": dict(os.environ if env is None else env),
                "queries": [list(q) for q in queries],
                "identifier": identifier,
                "timeout_s": timeout_s,
                "result": str(result),
            }
        )
    )
    run = subprocess.run(
        [unshare, "--mount", "--propagation", "private", sys.executable, "-m", __name__, str(spec)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s + 60,
    )
    if run.returncode != 0 or not result.exists():
        pytest.fail(f"the private journald did not run:\n{run.stdout}\n{run.stderr}")
    data = json.loads(result.read_text())
    return JournaldRun(data["returncode"], data["found"], data["everything"])


# --- inside the namespace -------------------------------------------------------------------------


def _mount_private_dirs() -> None:
    for path in PRIVATE_DIRS:
        if Path(path).is_dir():
            subprocess.run(["mount", "-t", "tmpfs", "tmpfs", path], check=True)
        elif path == "/run/log":
            Path(path).mkdir()
            subprocess.run(["mount", "-t", "tmpfs", "tmpfs", path], check=True)


def _wait_for(path: Path, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"journald did not create {path}")
        time.sleep(0.02)


def _journal_stream(identifier: str) -> socket.socket:
    """A stream to journald's stdout socket, as systemd opens one for a service's output."""
    stream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stream.connect("/run/systemd/journal/stdout")
    # identifier, unit, priority, level prefix, forward to syslog, kmsg, console
    stream.sendall(f"{identifier}\n\n6\n1\n0\n0\n0\n".encode())
    stream.shutdown(socket.SHUT_RD)
    return stream


def _journalctl(*args: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["journalctl", "--no-pager", "-o", "json", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def _inside(spec: dict[str, Any]) -> None:
    _mount_private_dirs()
    journald = subprocess.Popen([journald_binary()], stdout=subprocess.DEVNULL)
    try:
        _wait_for(Path("/run/systemd/journal/socket"))
        _wait_for(Path("/run/systemd/journal/stdout"))
        stream = _journal_stream(spec["identifier"])
        st = os.fstat(stream.fileno())
        env = {**spec["env"], "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        with stream:
            child = subprocess.Popen(
                spec["argv"], stdout=stream.fileno(), stderr=stream.fileno(), env=env
            )
        try:
            returncode = child.wait(spec["timeout_s"])
        except subprocess.TimeoutExpired:
            child.kill()
            returncode = child.wait()
        subprocess.run(["journalctl", "--sync"], check=False, timeout=30)
        everything = _journalctl()  # this journal holds this run only
        found = [_journalctl(*query) for query in spec["queries"]]
        result = {
            "returncode": returncode,
            "found": found,
            "everything": json.dumps(everything, ensure_ascii=False),
        }
        Path(spec["result"]).write_text(json.dumps(result))
    finally:
        journald.terminate()
        journald.wait(10)


if __name__ == "__main__":
    _inside(json.loads(Path(sys.argv[1]).read_text()))
