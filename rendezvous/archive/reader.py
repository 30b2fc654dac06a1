"""Read the raw archive back: one deduplicated Arrow table, unreadable files skipped by name.

The decoy is at-least-once: after a crash, records written but not yet
committed are written again. Reading deduplicates on ``(topic, partition,
offset)``, so callers see every record exactly once, in per-partition order.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rendezvous.archive.errors import ArchiveError, UnreadableFile
from rendezvous.archive.layout import TimeLike, list_files, to_epoch_ms
from rendezvous.archive.schema import ARCHIVE_SCHEMA, file_version, to_current

log = logging.getLogger(__name__)

SKIPPED_KEY = b"rendezvous.archive.skipped"
"""Metadata key of the returned table: JSON list of ``{"path", "reason"}`` of skipped files."""


def read_file(path: Path) -> pa.Table:
    """One archive file in the current schema; :class:`UnreadableFile` if it cannot be."""
    try:
        with pq.ParquetFile(path) as parquet:
            table = parquet.read()
    except (OSError, pa.ArrowException) as exc:
        raise UnreadableFile(f"not a readable Parquet file ({exc})") from exc
    return to_current(table, file_version(table.schema))


def read_archive(directory: Path | str, topic: str | None = None,
                 start: TimeLike | None = None, end: TimeLike | None = None) -> pa.Table:
    """The records of ``topic`` (every topic when None) with a timestamp in ``[start, end)``.

    Rows are deduplicated by ``(topic, partition, offset)`` and sorted by them.
    A record's time is its Kafka timestamp, or its arrival time when it has
    none. A truncated or corrupt file is skipped with a warning naming it; the
    skipped files are in the table's metadata (see :func:`skipped_files`).
    """
    root = Path(directory)
    if not root.is_dir():
        raise ArchiveError(f"no archive at {root} (not a directory)")
    start_ms = None if start is None else to_epoch_ms(start)
    end_ms = None if end is None else to_epoch_ms(end)
    tables, skipped = [], []
    for path in list_files(root, topic, start_ms, end_ms):
        try:
            tables.append(read_file(path))
        except UnreadableFile as exc:
            log.warning("skipping archive file %s: %s", path, exc)
            skipped.append({"path": str(path), "reason": str(exc)})
    # Each file holds one partition in offset order: in this order, usually no sort is needed.
    tables.sort(key=_first_row)
    table = pa.concat_tables(tables) if tables else ARCHIVE_SCHEMA.empty_table()
    table = _in_range(table, start_ms, end_ms)
    table = deduplicate(table)
    metadata = {**(ARCHIVE_SCHEMA.metadata or {}), SKIPPED_KEY: json.dumps(skipped).encode()}
    return table.replace_schema_metadata(metadata)


def skipped_files(table: pa.Table) -> list[dict[str, str]]:
    """The files :func:`read_archive` skipped, as ``{"path", "reason"}`` dicts."""
    raw = (table.schema.metadata or {}).get(SKIPPED_KEY)
    return list(json.loads(raw)) if raw else []


def _first_row(table: pa.Table) -> tuple[str, int, int]:
    if table.num_rows == 0:
        return ("", -1, -1)
    return (table["topic"][0].as_py(), table["partition"][0].as_py(), table["offset"][0].as_py())


def _in_range(table: pa.Table, start_ms: int | None, end_ms: int | None) -> pa.Table:
    if start_ms is None and end_ms is None:
        return table
    moment = pc.coalesce(table["timestamp_ms"], table["arrival_ms"])
    keep = pc.is_valid(moment)
    if start_ms is not None:
        keep = pc.and_(keep, pc.greater_equal(moment, start_ms))
    if end_ms is not None:
        keep = pc.and_(keep, pc.less(moment, end_ms))
    return table.filter(pc.fill_null(keep, False))


def deduplicate(table: pa.Table) -> pa.Table:
    """``table`` sorted by ``(topic, partition, offset)``, each such triple once.

    Sorting is skipped when the rows already are in order (the usual case: one
    file per partition and offset range, concatenated in that order).
    """
    if table.num_rows == 0:
        return table
    column = table["topic"]
    names = pa.array(sorted(pc.unique(column).to_pylist()), pa.string())
    topic = pc.index_in(column, value_set=names).to_numpy(zero_copy_only=False)
    partition = table["partition"].to_numpy()
    offset = table["offset"].to_numpy()
    if not _ascending(topic, partition, offset):
        order = np.lexsort((offset, partition, topic))
        table = table.take(order)
        topic, partition, offset = topic[order], partition[order], offset[order]
    first = np.ones(table.num_rows, dtype=bool)
    first[1:] = ((topic[1:] != topic[:-1]) | (partition[1:] != partition[:-1])
                 | (offset[1:] != offset[:-1]))
    return table if first.all() else table.filter(pa.array(first))


def _ascending(topic: np.ndarray, partition: np.ndarray, offset: np.ndarray) -> bool:
    """Whether the (topic, partition, offset) triples never go down."""
    same_topic = topic[1:] == topic[:-1]
    same_partition = same_topic & (partition[1:] == partition[:-1])
    return bool(np.all((topic[1:] > topic[:-1])
                       | (same_topic & (partition[1:] > partition[:-1]))
                       | (same_partition & (offset[1:] >= offset[:-1]))))
