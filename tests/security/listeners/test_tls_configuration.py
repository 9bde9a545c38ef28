"""sslyze checks the TLS of both listeners of ``clinic-server serve``.

Finding: TLS 1.2 still offered two CBC suites (ECDHE-ECDSA-AES128-SHA256, -AES256-SHA384).
Now both listeners speak TLS 1.2 or 1.3 only, with ECDHE and AEAD suites only, and their
certificate chains to the clinic's server CA for the loopback names.

sslyze pins an older ``cryptography`` than the project needs, so ``make deps`` installs it in
an environment of its own, ``.venv/tools/sslyze``; the scan runs it as a command.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from testbed.bench.listener_flood import HOST, ServedClinic

SSLYZE = Path(os.environ.get("ONSHI_SSLYZE", Path(sys.prefix) / "tools/sslyze/bin/sslyze"))
LEGACY = ("ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1")
CHECKS = [
    "--sslv2",
    "--sslv3",
    "--tlsv1",
    "--tlsv1_1",
    "--tlsv1_2",
    "--tlsv1_3",
    "--certinfo",
    "--compression",
    "--heartbleed",
    "--openssl_ccs",
    "--reneg",
]


@pytest.fixture(scope="module")
def scans(served: ServedClinic, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """sslyze's results for the staff listener and the kiosk listener (as a kiosk)."""
    if not SSLYZE.is_file():
        pytest.fail(f"sslyze is not installed at {SSLYZE}: run `make deps`", pytrace=False)
    out = tmp_path_factory.mktemp("sslyze") / "scan.json"
    targets = {f"{HOST}:{served.staff_port}": "staff", f"{HOST}:{served.kiosk_port}": "kiosk"}
    finished = subprocess.run(
        [
            str(SSLYZE),
            "--quiet",
            "--json_out",
            str(out),
            *CHECKS,
            "--certinfo_ca_file",
            str(served.server_ca),
            # the kiosk listener demands a device certificate; the staff one asks for none
            "--cert",
            str(served.kiosk_cert),
            "--key",
            str(served.kiosk_key),
            *targets,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    results = json.loads(out.read_text())["server_scan_results"]
    by_listener = {}
    for result in results:
        location = result["server_location"]
        by_listener[targets[f"{location['hostname']}:{location['port']}"]] = result
    assert set(by_listener) == {"staff", "kiosk"}
    return by_listener


def accepted(scan: dict[str, Any], protocol: str) -> list[str]:
    attempt = scan["scan_result"][f"{protocol}_cipher_suites"]
    assert attempt["status"] == "COMPLETED", attempt
    return [s["cipher_suite"]["name"] for s in attempt["result"]["accepted_cipher_suites"]]


@pytest.mark.parametrize("listener", ["staff", "kiosk"])
def test_only_tls_1_2_and_1_3_with_ecdhe_and_aead_suites(
    scans: dict[str, Any], listener: str
) -> None:
    scan = scans[listener]
    assert scan["scan_status"] == "COMPLETED", scan.get("connectivity_error_trace")
    tls12, tls13 = accepted(scan, "tls_1_2"), accepted(scan, "tls_1_3")
    print(f"\n{listener}: TLS 1.2 {tls12}; TLS 1.3 {tls13}")
    for legacy in LEGACY:
        assert accepted(scan, legacy) == [], legacy
    assert tls12
    assert tls13
    for suite in tls12:
        assert "CBC" not in suite, suite
        assert suite.startswith("TLS_ECDHE_"), suite
        assert "_GCM_" in suite or "CHACHA20_POLY1305" in suite, suite
    for suite in tls13:
        assert "_GCM_" in suite or "CHACHA20_POLY1305" in suite, suite


@pytest.mark.parametrize("listener", ["staff", "kiosk"])
def test_no_known_weakness(scans: dict[str, Any], listener: str) -> None:
    results = scans[listener]["scan_result"]
    assert results["tls_compression"]["result"]["supports_compression"] is False
    assert results["heartbleed"]["result"]["is_vulnerable_to_heartbleed"] is False
    assert results["openssl_ccs_injection"]["result"]["is_vulnerable_to_ccs_injection"] is False
    renegotiation = results["session_renegotiation"]["result"]
    assert renegotiation["is_vulnerable_to_client_renegotiation_dos"] is False


@pytest.mark.parametrize("listener", ["staff", "kiosk"])
def test_the_certificate_chains_to_the_clinic_ca_for_the_loopback_names(
    scans: dict[str, Any], listener: str
) -> None:
    info = scans[listener]["scan_result"]["certificate_info"]
    assert info["status"] == "COMPLETED", info
    for deployment in info["result"]["certificate_deployments"]:
        supplied = [
            p
            for p in deployment["path_validation_results"]
            if p["trust_store"]["name"] == "Supplied CA file"
        ]
        assert len(supplied) == 1
        assert supplied[0]["was_validation_successful"], supplied[0]["validation_error"]
        assert deployment["received_chain_has_valid_order"]
        assert not deployment["verified_chain_has_sha1_signature"]
        leaf = deployment["received_certificate_chain"][0]
        names = leaf["subject_alternative_name"]
        assert "127.0.0.1" in names["ip_addresses"]
        assert "localhost" in names["dns_names"]
        assert leaf["signature_hash_algorithm"]["name"] in ("sha256", "sha384", "sha512")
        assert leaf["public_key"]["algorithm"] == "ECPublicKey"
        assert leaf["public_key"]["key_size"] >= 256
        not_after = dt.datetime.fromisoformat(leaf["not_valid_after"].replace("Z", "+00:00"))
        assert not_after > dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
