"""Password guessing on the staff dashboard (finding: login throttling locked accounts).

Before: five wrong passwords locked any account, the administrator's too, for everyone, so
anyone could lock staff out; guessing across user names was not limited at all; every guess
cost a 64 MiB argon2 hash, sixteen at once, and slowed the kiosks down.

Now guesses are throttled per source address and per account, with growing delays, in the
database; a throttled attempt is answered 429 with ``Retry-After`` without hashing anything;
at most a few hashes run at once (the rest are refused at once, 429 too). These tests use
other loopback addresses (127.0.0.x) for the attacker and for staff at other desks.

Figures are printed (``pytest -s`` shows them): guesses per second heard from one address,
and the kiosks' p99 latency while quiet and during a login flood.
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from clinic.login_throttle import (
    FORGET_AFTER_S,
    LOGIN_THROTTLE_SCHEMA,
    LoginThrottle,
    address_key,
)
from clinic.server import ClinicServer, ServerThread, build_context
from clinic.storage import Database
from testbed.bench.clinic import _worker, _WorkerJob, percentile
from testbed.login_flood import client_from, guess, login_csrf, outcome, post_login
from tests.support.clinic import Clinic

REPO = Path(__file__).resolve().parents[2]
FLOOD_SECONDS = 5.0


class CountingHasher:
    """The server's password hasher, counting the hashes it computes and how many at once."""

    def __init__(self, inner):
        self._inner = inner
        self._lock = threading.Lock()
        self.verified = 0
        self.running = 0
        self.most_at_once = 0

    def verify(self, hash_, password):
        with self._lock:
            self.verified += 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            return self._inner.verify(hash_, password)
        finally:
            with self._lock:
                self.running -= 1

    def __getattr__(self, name):
        return getattr(self._inner, name)


@pytest.fixture
def counted(clinic: Clinic):
    staff = clinic.context.staff
    original = staff._hasher
    counting = CountingHasher(original)
    staff._hasher = counting
    try:
        yield counting
    finally:
        staff._hasher = original


def from_address(clinic: Clinic, address: str):
    return client_from(clinic.staff_url, clinic.server_ca, address)


def test_another_address_logs_in_while_one_address_is_throttled(clinic):
    with from_address(clinic, "127.0.0.2") as attacker:
        csrf = login_csrf(attacker)
        for _ in range(5):
            answer = post_login(attacker, csrf, clinic.admin, "not the password")
            assert outcome(answer) == "heard"
        # the address waits now, even with the right password: it is not even checked
        refused = post_login(attacker, csrf, clinic.admin, clinic.admin_password)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert 'id="wait"' in refused.text
    with from_address(clinic, "127.0.0.3") as desk:
        answer = post_login(desk, login_csrf(desk), clinic.admin, clinic.admin_password)
        assert outcome(answer) == "ok", "the administrator at another desk still logs in"
        assert desk.get("/").status_code == 200


def test_guesses_per_second_from_one_address_are_bounded(clinic, counted, capsys):
    result = guess(clinic.staff_url, clinic.server_ca, FLOOD_SECONDS, ["127.0.0.4"], connections=4)
    heard = result.outcomes["heard"]
    with capsys.disabled():
        print(
            f"\n[{clinic.backend}] one address, 4 connections, {FLOOD_SECONDS:.0f} s:"
            f" {heard} guesses heard ({result.heard_per_second:.2f}/s),"
            f" {result.outcomes['throttled']} refused unheard (429),"
            f" {counted.verified} password hashes, at most {counted.most_at_once} at once"
        )
    assert set(result.outcomes) <= {"heard", "throttled"}, result.outcomes
    assert result.retry_after_missing == 0
    # 5 free guesses, then waits of 1 s, 2 s, 4 s...: 7 or 8 in 5 s; the bound is generous
    assert heard <= 12
    assert result.outcomes["throttled"] > heard
    assert counted.verified == heard, "no hash is computed for a throttled attempt"


def test_concurrent_hashes_are_bounded_and_the_excess_refused_at_once(clinic, counted):
    addresses = [f"127.0.1.{n}" for n in range(1, 13)]
    result = guess(clinic.staff_url, clinic.server_ca, 3.0, addresses, connections=2)
    assert set(result.outcomes) <= {"heard", "throttled"}, result.outcomes
    assert result.retry_after_missing == 0
    assert counted.most_at_once <= clinic.config.login_hash_concurrency
    assert counted.verified == result.outcomes["heard"]


def test_the_throttle_is_shared_by_servers_on_one_database(clinic):
    second_context = build_context(clinic.config, clock=clinic.clock)
    second = ServerThread(ClinicServer(clinic.config, second_context)).start()
    try:
        with from_address(clinic, "127.0.0.5") as attacker:
            csrf = login_csrf(attacker)
            for _ in range(5):
                assert outcome(post_login(attacker, csrf, "nobody", "wrong password")) == "heard"
        other_url = f"https://127.0.0.1:{second.server.staff_port}"
        with client_from(other_url, clinic.server_ca, "127.0.0.5") as same_attacker:
            answer = post_login(same_attacker, login_csrf(same_attacker), "nobody", "wrong again")
            assert answer.status_code == 429, "the other server knows the address is throttled"
    finally:
        second.stop()


def _kiosk_job(clinic: Clinic, start_in: float) -> _WorkerJob:
    """One kiosk, as ``clinic-server bench`` drives it, in a process of its own."""
    cert_path, _ = clinic.issue_device(f"kiosk-latency-{secrets.token_hex(3)}")
    card = clinic.card("valid-employee")
    assert card.user_auth_key_pem is not None
    assert card.user_auth_certificate is not None
    return _WorkerJob(
        (clinic.kiosk_url,),
        str(clinic.server_ca),
        (str(cert_path),),
        card.user_auth_key_pem,
        card.user_auth_certificate,
        time.time() + start_in,
        FLOOD_SECONDS,
    )


def _flood(clinic: Clinic, seconds: float, round_: int) -> subprocess.Popen[str]:
    addresses = ",".join(f"127.0.{2 + round_}.{n}" for n in range(1, 9))
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "testbed.login_flood",
            clinic.staff_url,
            str(clinic.server_ca),
            str(seconds),
            addresses,
            "2",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )


#: A kiosk's p99 during the flood stays under this (the unbounded server: above 600 ms).
LOADED_P99_BOUND_MS = 200.0


def test_kiosks_keep_their_latency_during_a_login_flood(clinic, counted, capsys):
    """A kiosk's challenge + signature + verify, quiet and during a 5 s login flood.

    The kiosk and the flood each run in a process of their own (the server runs in the test's
    process), so neither shares an interpreter lock with the other or with the server. The
    flood comes from 8 fresh addresses, 2 connections each. The machine is shared, so a second
    round (with fresh addresses again) is run when the first one is over the bound: a server
    that really slows kiosks down fails both. The quiet and loaded p99s and their ratio are
    printed as figures; the assertion is an absolute bound, not a timing ratio that a shared
    machine's noise can break.
    """
    spawn = multiprocessing.get_context("spawn")
    ratios: list[float] = []
    loaded_p99s: list[float] = []
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as pool:
        for round_ in range(2):
            hashes_before = counted.verified
            counted.most_at_once = 0
            quiet_s, quiet_errors = pool.submit(_worker, _kiosk_job(clinic, 2.0)).result(60)
            flood = _flood(clinic, FLOOD_SECONDS + 3.0, round_)
            try:
                loaded_s, loaded_errors = pool.submit(_worker, _kiosk_job(clinic, 1.5)).result(60)
                out, _ = flood.communicate(timeout=60)
            finally:
                if flood.poll() is None:
                    flood.kill()
                    flood.wait()
            stats = json.loads(out)
            quiet = sorted(x * 1000 for x in quiet_s)
            loaded = sorted(x * 1000 for x in loaded_s)
            quiet_p99, loaded_p99 = percentile(quiet, 99), percentile(loaded, 99)
            ratios.append(loaded_p99 / quiet_p99)
            with capsys.disabled():
                print(
                    f"\n[{clinic.backend}] round {round_ + 1}: kiosk check (challenge + card"
                    f" signature + verify), quiet: {len(quiet)} checks,"
                    f" p50 {percentile(quiet, 50):.1f} ms, p99 {quiet_p99:.1f} ms,"
                    f" max {quiet[-1]:.1f} ms"
                    f"\n[{clinic.backend}] round {round_ + 1}: during a login flood from"
                    f" 8 addresses x 2 connections ({stats['outcomes']},"
                    f" {counted.verified - hashes_before} hashes, at most"
                    f" {counted.most_at_once} at once): {len(loaded)} checks,"
                    f" p50 {percentile(loaded, 50):.1f} ms, p99 {loaded_p99:.1f} ms,"
                    f" max {loaded[-1]:.1f} ms; p99 ratio {ratios[-1]:.2f}"
                )
            assert quiet_errors == loaded_errors == 0
            assert stats["outcomes"].get("throttled", 0) > 0
            assert counted.most_at_once <= 1, "hashing stays bounded during the flood"
            loaded_p99s.append(loaded_p99)
            if loaded_p99 < LOADED_P99_BOUND_MS:
                break
    # The ratio is a figure, printed above; what is asserted is far from both the unbounded
    # server (p99 above 600 ms under this flood) and from the noise of a shared machine.
    assert min(loaded_p99s) < LOADED_P99_BOUND_MS, (ratios, loaded_p99s)


def test_a_successful_login_is_not_counted_against_its_address(clinic):
    with from_address(clinic, "127.0.0.6") as desk:
        csrf = login_csrf(desk)
        for _ in range(10):
            answer = post_login(desk, csrf, clinic.admin, clinic.admin_password)
            assert outcome(answer) == "ok"
            desk.cookies.clear()
            csrf = login_csrf(desk)


def test_a_password_hash_takes_one_core_and_older_hashes_are_renewed_at_login(clinic):
    """A hash runs in one argon2 lane (one core); a four-lane hash stored by an earlier release
    still logs in, and is replaced by a one-lane hash of the same cost on the way."""
    staff = clinic.context.staff
    staff.add("lanes", "a long enough password")
    assert "$m=65536,t=3,p=1$" in _stored_hash(clinic, "lanes")
    with clinic.context.db.transaction(write=True) as tx:
        tx.execute(
            "UPDATE staff SET password_hash = ? WHERE username = ?",
            (PasswordHasher(parallelism=4).hash("a long enough password"), "lanes"),
        )
    assert staff.login("127.0.0.7", "lanes", "a long enough password").ok
    assert "$m=65536,t=3,p=1$" in _stored_hash(clinic, "lanes")


def _stored_hash(clinic: Clinic, username: str) -> str:
    with clinic.context.db.transaction() as tx:
        row = tx.one("SELECT password_hash FROM staff WHERE username = ?", (username,))
    assert row is not None
    return str(row["password_hash"])


# --- the rules, on a database of their own, with a clock the test moves --------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def throttle(tmp_path):
    db = Database.open(f"sqlite://{tmp_path / 'throttle.db'}")
    db.migrate([LOGIN_THROTTLE_SCHEMA])
    clock = Clock()
    try:
        yield LoginThrottle(db, clock=clock), clock
    finally:
        db.close()


def test_waits_grow_per_address_and_are_forgotten_after_an_hour(throttle):
    rules, clock = throttle
    for _ in range(5):
        assert rules.reserve("192.0.2.1", "admin") is None
    waits = []
    for _ in range(4):
        wait = rules.reserve("192.0.2.1", "admin")
        assert wait is not None
        waits.append(wait)
        clock.now += wait
        assert rules.reserve("192.0.2.1", "admin") is None
    assert waits == [1.0, 2.0, 4.0, 8.0]
    assert rules.reserve("192.0.2.1", "nurse") is not None, "other user names count the same"
    clock.now += FORGET_AFTER_S + 20
    assert rules.reserve("192.0.2.1", "admin") is None


def test_an_account_guessed_from_many_addresses_slows_them_but_not_a_clean_address(throttle):
    rules, _clock = throttle
    for n in range(10):
        assert rules.reserve(f"192.0.2.{n}", "admin") is None
    assert rules.reserve("192.0.2.0", "admin") is not None, "an address that failed waits"
    assert rules.reserve("198.51.100.7", "admin") is None, "a clean address does not"
    rules.succeeded("198.51.100.7", "admin")
    assert rules.reserve("192.0.2.0", "admin") is None, "a success clears the account's count"


def test_an_accounts_wait_is_answered_from_memory_for_that_user_name_only(throttle, monkeypatch):
    """Once refused for an account's wait, an address knocking again on that user name costs
    no database transaction (a flood would otherwise lock the throttle's table per guess)."""
    rules, _clock = throttle
    for n in range(10):
        assert rules.reserve(f"192.0.2.{n}", "admin") is None
    first = rules.reserve("192.0.2.0", "admin")
    assert first is not None
    assert rules.known_wait("192.0.2.0") == 0.0, "the address's own failures cost nothing yet"
    assert rules.known_wait("192.0.2.0", "admin") == pytest.approx(first)

    def no_database(**_kwargs):
        raise AssertionError("the database was asked")

    with monkeypatch.context() as patched:
        patched.setattr(rules._db, "transaction", no_database)
        assert rules.reserve("192.0.2.0", "admin") == pytest.approx(first)
    assert rules.reserve("192.0.2.0", "nurse") is None, "another user name is not held up"
    rules.succeeded("198.51.100.7", "admin")
    assert rules.known_wait("192.0.2.0", "admin") == 0.0, "a success clears the account's wait"


def test_a_success_gives_the_reservation_back(throttle):
    rules, _clock = throttle
    for _ in range(20):
        assert rules.reserve("192.0.2.9", "admin") is None
        rules.succeeded("192.0.2.9", "admin")


def test_a_clock_set_back_does_not_lock_anyone_out(throttle):
    rules, clock = throttle
    assert rules.reserve("192.0.2.9", "admin") is None
    rules.succeeded("192.0.2.9", "admin")
    clock.now -= 7200  # the clock was set back two hours (NTP, a technician)
    assert rules.reserve("192.0.2.9", "admin") is None, "a clean address goes ahead"
    for _ in range(6):
        rules.reserve("192.0.2.10", "nurse")
    clock.now -= 7200
    wait = rules.reserve("192.0.2.10", "nurse")
    assert wait is not None
    assert wait <= 2.0, "never longer than the delay the failures earned"


def test_ipv6_addresses_count_per_64():
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2")
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key(None) == "unknown"
