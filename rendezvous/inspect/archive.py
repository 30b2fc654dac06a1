"""A request's rows in the decoy's Parquet archive, reading as little as possible.

Hours outside the window are never listed (the archive's ``date=/hour=`` directories);
in each file, row groups whose ``timestamp_ms`` statistics lie outside the window are
skipped, the others' ``key`` column alone is read, and only the row groups holding a
matching key are read whole (a row whose key the redaction policy hashed or dropped is
matched by its value's ``id``: its row group's values are read too).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rendezvous.archive.layout import list_files
from rendezvous.archive.retention import Selector
from rendezvous.archive.schema import file_version, to_current
from rendezvous.decoy.redaction import HASH_PREFIX
from rendezvous.inspect.errors import InspectError
from rendezvous.inspect.records import Found, needle_of, request_of
from rendezvous.inspect.window import Window

log = logging.getLogger(__name__)


def search_archive(root: Path, selector: Selector, window: Window) -> list[Found]:
    """Every archived record (any topic) of the requests ``selector`` names, with a
    timestamp in the window; each ``(topic, partition, offset)`` once."""
    root = Path(root)
    if not root.is_dir():
        raise InspectError(f"no archive at {root} (not a directory): give the decoy's "
                           "--archive directory")
    needle = needle_of(selector)
    seen: dict[tuple[str, int, int], Found] = {}
    for path in list_files(root, None, window.start_ms, window.end_ms):
        topic = path.relative_to(root).parts[0]
        try:
            found = _search_file(path, topic, selector, needle, window)
        except (OSError, pa.ArrowException) as exc:
            log.warning("skipping archive file %s: %s", path, exc)
            continue
        for record in found:
            seen.setdefault((record.topic, record.partition, record.offset), record)
    return sorted(seen.values(), key=lambda r: (r.topic, r.partition, r.offset))


def _search_file(path: Path, topic: str, selector: Selector, needle: bytes,
                 window: Window) -> list[Found]:
    with pq.ParquetFile(path) as parquet:
        meta = parquet.metadata
        version = file_version(parquet.schema_arrow)
        found: list[Found] = []
        for group in range(meta.num_row_groups):
            if not _may_hold(meta.row_group(group), window):
                continue
            keys = parquet.read_row_group(group, columns=["key"]).column("key")
            named = pc.fill_null(pc.match_substring(keys, needle.decode(errors="replace")),
                                 False)
            redacted = pc.fill_null(pc.or_(pc.is_null(keys),
                                           pc.starts_with(keys, HASH_PREFIX)), True)
            if not pc.any(named).as_py() and not pc.any(redacted).as_py():
                continue
            if not pc.any(named).as_py() and not _values_mention(parquet, group, needle):
                continue
            table = to_current(parquet.read_row_group(group), version)
            found += _matching(table, topic, selector, needle, window)
        return found


def _may_hold(group: pq.RowGroupMetaData, window: Window) -> bool:
    """Whether a row group's timestamps may fall in the window (no statistics: may)."""
    for i in range(group.num_columns):
        column = group.column(i)
        if column.path_in_schema != "timestamp_ms":
            continue
        stats = column.statistics
        if stats is None or not stats.has_min_max or stats.null_count:
            return True  # a row without a timestamp is dated by its arrival: read it
        return bool(stats.max >= window.start_ms and stats.min < window.end_ms)
    return True


def _values_mention(parquet: pq.ParquetFile, group: int, needle: bytes) -> bool:
    values = parquet.read_row_group(group, columns=["value"]).column("value")
    return bool(pc.any(pc.fill_null(pc.match_substring(
        values, needle.decode(errors="replace")), False)).as_py())


def _matching(table: pa.Table, topic: str, selector: Selector, needle: bytes,
              window: Window) -> list[Found]:
    text = needle.decode(errors="replace")
    mentions = pc.or_(pc.fill_null(pc.match_substring(table["key"], text), False),
                      pc.fill_null(pc.match_substring(table["value"], text), False))
    found = []
    for row in table.filter(mentions).to_pylist():
        moment = row["timestamp_ms"] if row["timestamp_ms"] is not None else row["arrival_ms"]
        if moment is None or not window.start_ms <= moment < window.end_ms:
            continue
        rid = request_of(row["key"], row["value"], selector, needle)
        if rid is None:
            continue
        headers = [(h["key"], h["value"]) for h in row["headers"] or []]
        found.append(Found(topic, row["partition"], row["offset"], row["timestamp_ms"],
                           row["key"], row["value"], rid, headers, row["arrival_ms"]))
    return found
