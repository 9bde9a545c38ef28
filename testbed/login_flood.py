"""Password guessing against the staff dashboard, from chosen loopback addresses.

Used by the security tests and ``clinic-server bench --login-flood``, in-process (``guess``) or
as a separate process so the flood does not share the caller's interpreter lock::

    python -m testbed.login_flood URL CA_FILE SECONDS ADDRESS[,ADDRESS...] [CONNECTIONS]

Each connection is a thread with its own keep-alive HTTPS client bound to one source address;
it fetches the login form once and then posts wrong passwords for made-up user names until
the time is up. The totals are printed as one JSON object.
"""

from __future__ import annotations

import json
import secrets
import ssl
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def client_from(base_url: str, ca_file: Path | str, address: str) -> httpx.Client:
    """An HTTPS client whose connections leave from ``address`` (a loopback address)."""
    return httpx.Client(
        base_url=base_url,
        verify=ssl.create_default_context(cafile=str(ca_file)),
        transport=httpx.HTTPTransport(
            local_address=address,
            verify=ssl.create_default_context(cafile=str(ca_file)),
        ),
        follow_redirects=False,
        timeout=30,
    )


def login_csrf(client: httpx.Client) -> str:
    """The login form's CSRF token (its cookie stays in the client)."""
    html = client.get("/login").text
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def post_login(client: httpx.Client, csrf: str, username: str, password: str) -> httpx.Response:
    return client.post(
        "/login",
        data={"csrf": csrf, "username": username, "password": password, "next": "/"},
    )


def outcome(response: httpx.Response) -> str:
    """``heard`` (the password was checked and refused), ``ok``, ``throttled`` or the status."""
    if response.status_code == 303:
        return "heard" if response.headers["location"] == "/login?failed=1" else "ok"
    if response.status_code == 429:
        return "throttled"
    return str(response.status_code)


@dataclass
class FloodResult:
    seconds: float
    outcomes: Counter[str] = field(default_factory=Counter)
    retry_after_missing: int = 0

    @property
    def heard_per_second(self) -> float:
        return self.outcomes["heard"] / self.seconds

    def as_dict(self) -> dict[str, object]:
        return {
            "seconds": self.seconds,
            "outcomes": dict(self.outcomes),
            "retry_after_missing": self.retry_after_missing,
        }


def guess(
    base_url: str,
    ca_file: Path | str,
    seconds: float,
    addresses: list[str],
    *,
    connections: int = 1,
    username: str | None = None,
) -> FloodResult:
    """Guess for ``seconds`` from every address with ``connections`` connections each."""
    result = FloodResult(seconds)
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def run(address: str) -> None:
        with client_from(base_url, ca_file, address) as client:
            csrf = login_csrf(client)
            while time.monotonic() < deadline:
                name = username or f"guess-{secrets.token_hex(4)}"
                answer = post_login(client, csrf, name, secrets.token_urlsafe(12))
                kind = outcome(answer)
                with lock:
                    result.outcomes[kind] += 1
                    if kind == "throttled" and "retry-after" not in answer.headers:
                        result.retry_after_missing += 1

    threads = [
        threading.Thread(target=run, args=(address,), daemon=True)
        for address in addresses
        for _ in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    return result


def main(argv: list[str]) -> int:
    url, ca_file, seconds, addresses, *rest = argv
    connections = int(rest[0]) if rest else 1
    result = guess(url, ca_file, float(seconds), addresses.split(","), connections=connections)
    print(json.dumps(result.as_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
