"""Times as the clinic server shows them: in the clinic's zone (``timezone`` in
``clinic.toml``, ``Asia/Tokyo`` by default), the zone the dashboard shows its times in, and
with the zone's name wherever the reader cannot tell it from the page around them - the
command line's output and the server's log lines.
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

#: How the dashboard and the command line write a moment (the command line adds the zone).
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def clinic_time(moment: float, zone: str) -> str:
    """``moment`` (seconds since the epoch) in the clinic's zone, with the zone's name:
    ``2026-11-24 09:00:00 JST``."""
    return dt.datetime.fromtimestamp(moment, ZoneInfo(zone)).strftime(f"{TIME_FORMAT} %Z")


class ZonedFormatter(logging.Formatter):
    """Log lines stamped in the clinic's zone, with the zone's name."""

    def __init__(self, fmt: str, zone: str) -> None:
        super().__init__(fmt)
        self._zone = ZoneInfo(zone)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = dt.datetime.fromtimestamp(record.created, self._zone)
        return f"{moment.strftime(TIME_FORMAT)},{int(record.msecs):03d} {moment.strftime('%Z')}"


def configure_logging(level: str, zone: str, fmt: str) -> None:
    """The root logger on standard error, its times in ``zone`` (``serve`` and the
    dashboard's process)."""
    handler = logging.StreamHandler()
    handler.setFormatter(ZonedFormatter(fmt, zone))
    logging.basicConfig(level=level.upper(), handlers=[handler])
