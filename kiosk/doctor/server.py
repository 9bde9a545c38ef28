"""The clinic servers: each reachable with the pinned CA, and accepting this device.

One signed round trip through the kiosk's own client (:mod:`kiosk.clinic_client`) per server
of ``[server] urls``, each on its own (no failover to the next): a challenge is requested,
which the server answers only over mutual TLS to a device it knows and for a request signed
with that device's key. An unused challenge simply expires.
"""

from __future__ import annotations

from dataclasses import replace

from contract.self_check import Finding, failed, ok
from kiosk.server_config import DeviceConfig, ServerConfig

ISSUE = "clinic-server device issue NAME --out DIR on the clinic server"


def each_server(server: ServerConfig) -> list[tuple[str, ServerConfig]]:
    """Every server of the configuration on its own, with the name its finding takes:
    ``clinic server``, or ``clinic server 1``, ``clinic server 2``... when there are several."""
    if len(server.urls) == 1:
        return [("clinic server", server)]
    return [
        (f"clinic server {number}", replace(server, url=url, urls=(url,)))
        for number, url in enumerate(server.urls, start=1)
    ]


def check_server(
    server: ServerConfig, device: DeviceConfig, name: str = "clinic server"
) -> Finding:
    import time

    from contract.errors import ConfigError
    from kiosk.clinic_client import open_clinic_client
    from kiosk.errors import ServerRejected, ServerUnreachable

    try:
        identity = device.identity()
        client = open_clinic_client(server, device, identity, retries=0)
    except ConfigError as exc:
        return failed(name, str(exc), "fix [server] ca and [device]; " + ISSUE)
    started = time.perf_counter()
    try:
        with client:
            client.challenge()
    except ServerUnreachable as exc:
        text = str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in text:
            return failed(
                name,
                f"{server.url} shows a certificate the pinned CA {server.ca} did not sign",
                "copy the clinic's server CA (clinic-server-ca.pem, written by `clinic-server "
                "device issue`) to [server] ca; check [server] url names this clinic's server",
            )
        if "alert" in text.lower():
            return failed(
                name,
                f"{server.url} refused this device's certificate in the TLS handshake",
                "the certificate is not from this clinic's device CA or has expired: " + ISSUE,
            )
        return failed(
            name,
            f"cannot reach {server.url} ({text[-160:]})",
            "is the clinic server running (systemctl status onshi-clinic)? check the network, "
            "[server] url and the firewall",
        )
    except ServerRejected as exc:
        if exc.status in (401, 403):
            return failed(
                name,
                f"{server.url} does not accept device {identity.device_id} "
                f"(HTTP {exc.status}: revoked, unknown, or the clock is off)",
                "check the clock; if it is right, the device was revoked: " + ISSUE,
            )
        return failed(name, f"{server.url} answered {exc}", "see the clinic server's log")
    elapsed = (time.perf_counter() - started) * 1000
    return ok(
        name,
        f"{server.url} accepts device {identity.device_id} (signed challenge in {elapsed:.0f} ms)",
    )
