"""The outbox's depth and the uploader: running, its last success and its last error."""

from __future__ import annotations

import time

from contract.self_check import Finding, failed, ok, warning
from kiosk.outbox.config import OutboxConfig
from kiosk.outbox.status import STALE_AFTER_S


def _ago(wall_ns: int | None, now_ns: int) -> str:
    if wall_ns is None:
        return "never"
    seconds = (now_ns - wall_ns) / 1e9
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def check_outbox(
    config: OutboxConfig,
    device_id: str | None,
    *,
    now_ns: int | None = None,
    stale_after_s: float = STALE_AFTER_S,
) -> Finding:
    """Opens the outbox only when its file exists (the kiosk creates it, with its owner)."""
    from contract.errors import ConfigError
    from kiosk.errors import OutboxError
    from kiosk.outbox.running import uploader_running

    name = "outbox"
    now_ns = now_ns or time.time_ns()
    if device_id is None:
        return warning(name, "skipped: the device is not known", "fix the enrolment first")
    if not config.path.parent.is_dir():
        return failed(
            name,
            f"the folder {config.path.parent} does not exist",
            "is the data partition mounted? create it, owned by the kiosk's user, mode 0700",
        )
    if not config.path.exists():
        return warning(
            name, f"no outbox at {config.path} yet", "the kiosk makes it when it first starts"
        )
    try:
        with config.open(device_id) as outbox:
            status = outbox.status()
    except (ConfigError, OutboxError) as exc:
        return failed(name, f"cannot open {config.path}: {exc}", "see `kiosk uploader status`")
    running = uploader_running(config.path)
    alarms = status.alarms + status.backlog_alarms(
        uploader_running=running, now_ns=now_ns, stale_after_s=stale_after_s
    )
    age = status.oldest_age_s(now_ns)
    detail = (
        f"{status.records} records queued"
        + (f" (oldest {age:.0f} s)" if age is not None else "")
        + f", {status.fill:.0%} full; uploader {'running' if running else 'not running'}, "
        f"last success {_ago(status.last_upload_wall_ns, now_ns)}"
    )
    if status.last_error is not None:
        detail += f", last error {status.last_error} {_ago(status.last_error_wall_ns, now_ns)}"
    if alarms:
        detail += f"; alarms {', '.join(alarms)}"
    if "outbox.full" in alarms or ("uploader.not_running" in alarms and status.records):
        return failed(
            name,
            detail,
            "start the uploader: systemctl start onshi-kiosk-uploader "
            "(journalctl -u onshi-kiosk-uploader says why it stopped)",
        )
    if alarms:
        return warning(name, detail, "see `kiosk uploader status` for the alarms' advice")
    return ok(name, detail)
