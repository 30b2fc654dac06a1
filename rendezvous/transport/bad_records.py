"""Records skipped because their bytes are not a valid message: counted, logged, never fatal."""

from __future__ import annotations

import logging
import time
from typing import Protocol, cast

from prometheus_client import Counter

log = logging.getLogger(__name__)

SKIPPED = Counter("rendezvous_bad_records", "Records skipped: not a valid message",
                  ["component", "topic"])
LOG_EVERY_S = 10.0


class Located(Protocol):
    def topic(self) -> str | None: ...

    def partition(self) -> int | None: ...

    def offset(self) -> int | None: ...


def topic_of(record: Located) -> str:
    """A consumed record's topic (the client's types allow None; a consumed record has one)."""
    return cast(str, record.topic())


def partition_of(record: Located) -> int:
    """A consumed record's partition."""
    return cast(int, record.partition())


def offset_of(record: Located) -> int:
    """A consumed record's offset."""
    return cast(int, record.offset())


def where(record: Located) -> str:
    """``topic/partition/offset`` of a record, as dead letters and logs name it."""
    return f"{record.topic()}/{record.partition()}/{record.offset()}"


class BadRecords:
    """Counts skipped records per topic; logs the first of each topic, then at most one
    line per topic every ``LOG_EVERY_S`` (a flood of bad records must not flood the log)."""

    def __init__(self, component: str) -> None:
        self.component = component
        self._next_log: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}

    def skip(self, kind: str, location: str, reason: str) -> None:
        """Count one skipped record of topic ``kind`` at ``location`` (see :func:`where`)."""
        SKIPPED.labels(self.component, kind).inc()
        now = time.monotonic()
        if now < self._next_log.get(kind, 0.0):
            self._unlogged[kind] = self._unlogged.get(kind, 0) + 1
            return
        more = self._unlogged.pop(kind, 0)
        log.warning("skipped a bad %s record at %s: %s%s", kind, location, reason[:300],
                    f" (and {more} more since the last report)" if more else "")
        self._next_log[kind] = now + LOG_EVERY_S
