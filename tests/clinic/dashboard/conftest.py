"""Fixtures for the dashboard's tests (the server itself comes from ``tests/clinic``):
a signed-in HTTPS client, and a page of headless Chromium (Debian's /usr/bin/chromium) driven
by Playwright."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def spki_pin(certificate_path: Path) -> str:
    """base64 SHA-256 of a certificate's public key, as Chromium's SPKI allow-list wants it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    certificate = x509.load_pem_x509_certificate(certificate_path.read_bytes())
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashes.Hash(hashes.SHA256())
    digest.update(spki)
    return base64.b64encode(digest.finalize()).decode("ascii")


@pytest.fixture
def browser_page(clinic, tmp_path):
    if not CHROMIUM.exists() or shutil.which("chromium") is None:
        pytest.fail(
            "Debian's chromium is missing: `make deps` installs it "
            "(provisioning/debian-packages.txt)",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            # trust exactly the clinic server's key (its CA is not in Chromium's store); a
            # trusted origin, unlike ignore_https_errors, also lets downloads through
            args=[
                *CHROMIUM_FLAGS,
                f"--ignore-certificate-errors-spki-list={spki_pin(clinic.config.paths.server_cert)}",
            ],
            accept_downloads=True,
            locale="ja-JP",
        )
        try:
            page = context.new_page()
            page.set_default_timeout(10_000)
            problems: list[str] = []
            page.on(
                "console",
                lambda message: problems.append(message.text) if message.type == "error" else None,
            )
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.problems = problems
            yield page
        finally:
            context.close()


@pytest.fixture
def staff(clinic):
    """A logged-in administrator's HTTPS client."""
    with clinic.staff_client() as client:
        answer = clinic.login(client)
        assert answer.status_code == 303
        yield client
