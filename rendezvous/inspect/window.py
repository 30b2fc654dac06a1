"""The time range a request is searched in: ``--since`` and ``--until``."""

from __future__ import annotations

import time
from dataclasses import dataclass

from rendezvous.archive.errors import ArchiveError
from rendezvous.archive.layout import HOUR_MS, to_epoch_ms
from rendezvous.archive.retention import parse_age
from rendezvous.inspect.errors import InspectError

DEFAULT_SPAN_MS = HOUR_MS
"""Without ``--since``: the hour before ``--until`` (before now)."""


@dataclass(frozen=True)
class Window:
    """Epoch milliseconds ``[start_ms, end_ms)``."""

    start_ms: int
    end_ms: int

    def describe(self) -> str:
        """``2026-12-07T21:44:59Z .. 2026-12-07T22:44:59Z``."""
        return f"{iso(self.start_ms)} .. {iso(self.end_ms)}"


def parse_time(text: str, now_ms: int) -> int:
    """Epoch ms of ``text``: an ISO-8601 time (UTC unless it says), epoch milliseconds,
    or an age before now (``90m``, ``2h``, ``1d``)."""
    try:
        return now_ms - parse_age(text)
    except ArchiveError:
        pass
    try:
        return to_epoch_ms(text)
    except (ValueError, TypeError):
        raise InspectError(f"{text!r} is not a time: give an ISO time "
                           "(2026-12-07T22:40:00Z), epoch milliseconds, or an age "
                           "before now (90m, 2h, 1d)") from None


def window(since: str | None, until: str | None, now_ms: int | None = None) -> Window:
    """The range ``--since``/``--until`` name (default: the last hour)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    end = now_ms if until is None else parse_time(until, now_ms)
    start = end - DEFAULT_SPAN_MS if since is None else parse_time(since, now_ms)
    if start >= end:
        raise InspectError(f"--since ({iso(start)}) is not before --until ({iso(end)})")
    return Window(start, end)


def iso(ms: float) -> str:
    """``2026-12-07T22:40:00.123Z``: UTC, to the millisecond."""
    seconds, millis = divmod(int(round(ms)), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
