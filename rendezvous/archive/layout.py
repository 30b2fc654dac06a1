"""Where archive files live: hive-style ``<topic>/date=YYYY-MM-DD/hour=HH/`` directories.

The date and hour are those of the record timestamp in UTC, so a time range
prunes whole directories before any file is opened.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

HOUR_MS = 3_600_000
SUFFIX = ".parquet"
TEMP_SUFFIX = ".tmp"
"""A file being written is ``.<final name>.tmp``: hidden, and never matched by ``*.parquet``."""

TimeLike = datetime | int | float | str
"""A point in time: a datetime (naive = UTC), epoch milliseconds, or an ISO-8601 string."""


def hour_directory(root: Path, topic: str, hour: int) -> Path:
    """The directory of ``topic``'s records in hour ``hour`` (epoch ms // ``HOUR_MS``)."""
    moment = datetime.fromtimestamp(hour * HOUR_MS / 1000, tz=UTC)
    return Path(root) / topic / f"date={moment:%Y-%m-%d}" / f"hour={moment:%H}"


def file_name(partition: int, first_offset: int) -> str:
    """``part-<partition>-<first offset>-<uuid>.parquet``: unique even when a crashed
    decoy's successor writes the same offsets again."""
    return f"part-{partition}-{first_offset}-{uuid.uuid4().hex}{SUFFIX}"


def to_epoch_ms(moment: TimeLike) -> int:
    """Epoch milliseconds of ``moment``; naive datetimes and ISO strings are UTC."""
    if isinstance(moment, bool):
        raise TypeError("a time cannot be a bool")
    if isinstance(moment, int | float):
        return int(moment)
    if isinstance(moment, str):
        text = moment.strip()
        if text.lstrip("-").isdigit():
            return int(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _directory_hour(date_dir: Path, hour_dir: Path) -> int | None:
    """The epoch hour of ``date=.../hour=...``, or None when the names are not ours."""
    try:
        day = datetime.strptime(date_dir.name.removeprefix("date="), "%Y-%m-%d")
        hour = int(hour_dir.name.removeprefix("hour="))
    except ValueError:
        return None
    return int(day.replace(tzinfo=UTC).timestamp() * 1000) // HOUR_MS + hour


def list_files(root: Path, topic: str | None = None, start_ms: int | None = None,
               end_ms: int | None = None) -> Iterator[Path]:
    """Every finished archive file of ``topic`` (all topics when None) whose hour
    overlaps ``[start_ms, end_ms)``, in path order."""
    root = Path(root)
    topics = [root / topic] if topic else sorted(p for p in root.iterdir() if p.is_dir())
    first_hour = None if start_ms is None else start_ms // HOUR_MS
    last_hour = None if end_ms is None else (end_ms - 1) // HOUR_MS
    for topic_dir in topics:
        if not topic_dir.is_dir():
            continue
        for date_dir in sorted(topic_dir.glob("date=*")):
            for hour_dir in sorted(date_dir.glob("hour=*")):
                hour = _directory_hour(date_dir, hour_dir)
                if hour is not None and (
                    (first_hour is not None and hour < first_hour)
                    or (last_hour is not None and hour > last_hour)
                ):
                    continue
                yield from sorted(p for p in hour_dir.glob(f"*{SUFFIX}")
                                  if not p.name.startswith("."))
