"""Every check of ``kiosk doctor``, in the order a maintainer fixes things."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from contract.self_check import Finding, failed
from kiosk.config import KioskConfig


@dataclass(frozen=True)
class Roots:
    """Where the checks look; tests point them at folders."""

    sys: Path = Path("/sys")
    proc: Path = Path("/proc")
    dev: Path = Path("/dev")
    mounts: Path = Path("/proc/self/mounts")
    statvfs: Callable[[Path], os.statvfs_result] = field(default=os.statvfs)


#: Seconds each check took, by name (``kiosk bench doctor`` passes one to ``run_checks``).
Timings = dict[str, list[float]]


def _guarded(name: str, check: Callable[[], Finding], timings: Timings | None = None) -> Finding:
    """A check that breaks reports itself failed rather than hiding the other checks."""
    started = time.perf_counter()
    try:
        return check()
    except Exception as exc:
        return failed(name, f"the check broke: {type(exc).__name__}: {exc}", "report this")
    finally:
        if timings is not None:
            timings.setdefault(name, []).append(time.perf_counter() - started)


def run_checks(
    config: KioskConfig,
    *,
    roots: Roots | None = None,
    clock_synced: Callable[[], bool | None] | None = None,
    timings: Timings | None = None,
) -> list[Finding]:
    from kiosk.doctor import devices, identity, outbox, pcsc, server, system, updates
    from kiosk.outbox.heartbeat import clock_synced as heartbeat_clock_synced

    roots = roots or Roots()
    synced = clock_synced or heartbeat_clock_synced
    findings: list[Finding] = []
    readers: list[str | None] = [None]

    def guard(name: str, check: Callable[[], Finding]) -> Finding:
        return _guarded(name, check, timings)

    def reader_check() -> Finding:
        finding, readers[0] = pcsc.check_reader(
            config.reader.name, usb_root=roots.sys / "bus/usb/devices"
        )
        return finding

    findings.append(guard("pc/sc reader", reader_check))
    reader = readers[0]
    findings.append(
        guard(
            "card probe",
            lambda: pcsc.check_card(reader, command_timeout_s=config.reader.command_timeout_s),
        )
    )
    display = config.display
    findings.append(guard("display", lambda: devices.check_display(display, roots.sys)))
    findings.append(
        guard(
            "touch",
            lambda: devices.check_touch(roots.proc, roots.dev, video_driver=display.video_driver),
        )
    )
    findings.append(guard("gpio", lambda: devices.check_gpio(config.gpio, roots.dev)))
    findings.append(guard("voice", lambda: devices.check_voice(display.voice)))
    findings.append(guard("clock", lambda: system.check_clock(synced)))
    enrolment = guard("enrolment", lambda: identity.check_enrolment(config.device))
    findings.append(enrolment)
    enrolled = enrolment.state != "failed"
    if enrolled:
        findings.append(
            guard("certificate", lambda: identity.check_certificate_expiry(config.device))
        )
    for name, one in server.each_server(config.server):
        findings.append(
            guard(name, functools.partial(server.check_server, one, config.device, name))
        )
    device_id = config.device.identity().device_id if enrolled else None
    findings.append(guard("outbox", lambda: outbox.check_outbox(config.outbox, device_id)))
    findings.append(
        guard(
            "disk",
            lambda: system.check_disk(
                config.outbox.path.parent,
                needed_bytes=config.outbox.max_bytes,
                statvfs=roots.statvfs,
            ),
        )
    )
    findings.append(guard("root fs", lambda: system.check_root_read_only(roots.mounts)))
    findings.append(guard("update slots", updates.check_updates))
    return findings
