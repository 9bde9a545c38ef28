"""Fixtures shared by the whole suite: the PC/SC daemon, a simulated JPKI CA, card profiles."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from smartcard import scard

from contract.sealing import OutboxPrivateKey
from kiosk.sim.pki import TestJpkiCa, new_rsa_key
from kiosk.sim.profile import CardKind, CardProfile
from testbed.local_clinic import LocalClinic

#: Fixtures that run the clinic server, for tests/clinic and tests/security.
pytest_plugins = ["tests.support.clinic_fixtures"]


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    """A command run in-process (``kiosk uploader run``) sets up the process's logging; the
    next test gets the root logger as it was."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


#: The vpcd reader the simulated cards are inserted into by default (port 35963).
VPCD_READER = "Virtual PCD 00 00"


@pytest.fixture(scope="session")
def pcscd() -> str:
    """The name of the vpcd reader; fails (never skips) when pcscd or vpcd is missing."""
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        pytest.fail(
            f"pcscd is not running ({scard.SCardGetErrorMessage(hresult)}): "
            "start it with `sh tests/services/pcscd.sh` (`make test` does it)",
            pytrace=False,
        )
    try:
        hresult, readers = scard.SCardListReaders(context, [])
    finally:
        scard.SCardReleaseContext(context)
    if hresult != scard.SCARD_S_SUCCESS or VPCD_READER not in readers:
        pytest.fail(
            f"pcscd runs but the reader {VPCD_READER!r} is missing (readers: {readers or []}): "
            "install vsmartcard-vpcd and restart pcscd",
            pytrace=False,
        )
    return VPCD_READER


@pytest.fixture(scope="session")
def ca() -> TestJpkiCa:
    """One simulated JPKI user-authentication CA for the session."""
    return TestJpkiCa.create()


@pytest.fixture(scope="session")
def rsa_keys() -> tuple[rsa.RSAPrivateKey, ...]:
    """A few RSA-2048 keys, reused by the card profiles of the whole session."""
    return tuple(new_rsa_key() for _ in range(3))


CardProfileFactory = Callable[..., CardProfile]


@pytest.fixture
def card_profile_factory(
    tmp_path: Path, ca: TestJpkiCa, rsa_keys: tuple[rsa.RSAPrivateKey, ...]
) -> CardProfileFactory:
    """``make(kind=CardKind.MYNUMBER, *, save=True, **generate_options) -> CardProfile``.

    Profiles come from :meth:`CardProfile.generate` with the session CA and a reused key, and
    are saved under ``tmp_path`` (so PIN counters persist) unless ``save=False``.
    """
    numbers = itertools.count(1)

    def make(
        kind: CardKind = CardKind.MYNUMBER, *, save: bool = True, **options: Any
    ) -> CardProfile:
        number = next(numbers)
        card_id = options.pop("id", f"{kind}-{number}")
        if kind.has_user_authentication:
            options.setdefault("key", rsa_keys[number % len(rsa_keys)])
        path = tmp_path / "cards" / f"{card_id}.toml" if save else None
        return CardProfile.generate(kind, ca, id=card_id, path=path, **options)

    return make


@pytest.fixture(scope="session")
def server_key() -> OutboxPrivateKey:
    """The clinic server's outbox key pair (ML-KEM-768 + X25519), one for the session."""
    return OutboxPrivateKey.generate("mlkem768-x25519")


#: The kiosks issued by the session's local clinic server, one per test that needs its own.
LOCAL_CLINIC_DEVICES = (
    "kiosk-ingest",
    "kiosk-replay",
    "kiosk-gap",
    "kiosk-foreign",
    "kiosk-conflict",
    "kiosk-outage",
    "kiosk-crash-a",
    "kiosk-crash-b",
    "kiosk-dashboard",
    "kiosk-cli",
    "kiosk-sealed",
)


@pytest.fixture(scope="session")
def local_clinic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalClinic]:
    """One real clinic server (uvicorn, mutual TLS, ingest) on 127.0.0.1 for the session."""
    server = LocalClinic(tmp_path_factory.mktemp("clinic"), LOCAL_CLINIC_DEVICES)
    with server:
        yield server
