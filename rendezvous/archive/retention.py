"""Retention of the raw archive: whole hours pruned past an age, one request forgotten.

:func:`prune` deletes ``<topic>/date=/hour=`` directories whose whole hour is older
than the retention, never one holding a file being written (a ``.tmp``): the
directory is first renamed to a hidden name, so a reader sees all of an hour or none
of it, then deleted. :func:`forget` removes one request's rows: each file holding it
is rewritten without them under a temporary name, fsynced, and renamed over the
original (``os.replace``: atomic), so a reader sees the old file or the new one.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rendezvous.archive.errors import ArchiveError
from rendezvous.archive.layout import HOUR_MS, TEMP_SUFFIX, _directory_hour, list_files

log = logging.getLogger(__name__)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhm])\s*$")
_UNIT_MS = {"d": 24 * HOUR_MS, "h": HOUR_MS, "m": 60_000}


def parse_age(text: str) -> int:
    """``30d``, ``12h`` or ``90m`` in milliseconds."""
    match = _DURATION.match(text)
    if not match:
        raise ArchiveError(f"{text!r} is not an age like 30d, 12h or 90m")
    return int(float(match.group(1)) * _UNIT_MS[match.group(2)])


@dataclass(frozen=True)
class Pruned:
    """What a prune did: the hour directories deleted, and those kept because a file
    in them was being written."""

    deleted: list[Path]
    busy: list[Path]


def prune(root: Path, older_than_ms: int, now_ms: int | None = None,
          dry_run: bool = False) -> Pruned:
    """Delete every hour directory of every topic whose hour ended ``older_than_ms`` ago."""
    root = Path(root)
    if not root.is_dir():
        raise ArchiveError(f"no archive at {root} (not a directory)")
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    cutoff_hour = (now_ms - older_than_ms) // HOUR_MS  # hours before this one are past it
    deleted, busy = [], []
    for topic_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for date_dir in sorted(topic_dir.glob("date=*")):
            for hour_dir in sorted(date_dir.glob("hour=*")):
                hour = _directory_hour(date_dir, hour_dir)
                if hour is None or hour >= cutoff_hour:
                    continue
                if any(p.name.endswith(TEMP_SUFFIX) for p in hour_dir.iterdir()):
                    busy.append(hour_dir)  # a decoy is writing here: next time
                    continue
                deleted.append(hour_dir)
                if not dry_run:
                    _remove(hour_dir)
            if not dry_run and date_dir.is_dir() and not any(date_dir.iterdir()):
                date_dir.rmdir()
    return Pruned(deleted, busy)


def _remove(directory: Path) -> None:
    hidden = directory.with_name(f".pruning-{directory.name}-{uuid.uuid4().hex[:8]}")
    os.rename(directory, hidden)  # atomic: readers list all of the hour or none of it
    shutil.rmtree(hidden)


@dataclass(frozen=True)
class Forgotten:
    """What a forget did: rows removed per rewritten (or deleted) file."""

    files: dict[Path, int]

    @property
    def rows(self) -> int:
        return sum(self.files.values())


def forget(root: Path, request_id: str) -> Forgotten:
    """Remove every row of request ``request_id`` (its key, or its value's ``id``) from
    every topic of the archive, rewriting each file that holds one, atomically."""
    root = Path(root)
    if not root.is_dir():
        raise ArchiveError(f"no archive at {root} (not a directory)")
    if not request_id:
        raise ArchiveError("an empty request id")
    changed = {}
    for path in list_files(root):
        table = pq.read_table(path)
        drop = _rows_of(table, request_id)
        if not drop.any():
            continue
        keep = table.filter(pa.array(~drop))
        if keep.num_rows:
            _rewrite(path, keep)
        else:
            path.unlink()
            fsync_dir(path.parent)
        changed[path] = int(drop.sum())
    return Forgotten(changed)


def _rows_of(table: pa.Table, request_id: str) -> np.ndarray:
    """A boolean mask of the rows of ``request_id``."""
    wanted = request_id.encode()
    mask = np.asarray(pc.equal(table.column("key"), pa.scalar(wanted, pa.binary()))
                      .fill_null(False))
    # Values that mention the id somewhere are decoded to check their ``id`` field.
    maybe = np.asarray(pc.match_substring(table.column("value"), request_id).fill_null(False))
    values = table.column("value")
    for i in np.flatnonzero(maybe & ~mask):
        try:
            body = msgspec.json.decode(values[int(i)].as_py())
        except msgspec.DecodeError:
            continue
        if isinstance(body, dict) and body.get("id") == request_id:
            mask[i] = True
    return mask


def _rewrite(path: Path, table: pa.Table) -> None:
    with pq.ParquetFile(path) as original:
        compression = original.metadata.row_group(0).column(0).compression.lower()
    temp = path.with_name(f".{path.name}.forget{TEMP_SUFFIX}")
    try:
        with temp.open("wb") as out:
            pq.write_table(table, out, compression=compression)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a directory's entries durable (the decoy's writer has its own: the archive
    package does not import the decoy)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
