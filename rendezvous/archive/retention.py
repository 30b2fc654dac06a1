"""Retention of the raw archive: whole hours pruned past an age, one request forgotten.

:func:`prune` deletes ``<topic>/date=/hour=`` directories whose whole hour is older
than the retention, never one holding a file being written (a ``.tmp``): the
directory is first renamed to a hidden name, so a reader sees all of an hour or none
of it, then deleted. :func:`forget` removes one request's rows: each file holding it
is rewritten without them under a temporary name, fsynced, and renamed over the
original (``os.replace``: atomic), so a reader sees the old file or the new one; a
request is named by its id (with the rows the gateway made of it) or an id prefix
(:class:`Selector`). What Kafka still holds of it: :mod:`rendezvous.archive.topics`.
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

FILE_MODE = 0o600
"""Mode of every archive file (the decoy's writer uses the same)."""
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


TOKEN = re.compile(r"[0-9a-f]{12,}")
"""A gateway call's token: 32 hex digits (128 random bits); 12 or more before issue 31."""


@dataclass(frozen=True)
class Selector:
    """Which requests to forget: ``ids`` and ``prefixes`` of request ids.

    An id matches itself and the rows the HTTP gateway made of it: a call with id ``r1``
    is ``r1.<token>.<row>`` in the pipeline (``<token>``: hex, see
    :func:`rendezvous.gateway.service.pipeline_id`), and its ``rendezvous_id``
    ``r1.<token>`` matches ``r1.<token>.<row>``. A prefix matches every id that starts
    with it."""

    ids: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.ids and not self.prefixes:
            raise ArchiveError("nothing to forget: give a request id or an id prefix")
        if any(not text for text in (*self.ids, *self.prefixes)):
            raise ArchiveError("an empty request id or prefix")
        alternatives = []
        for request_id in self.ids:
            escaped = re.escape(request_id)
            alternatives.append(rf"{escaped}(?:\.[0-9a-f]{{12,}}\.[0-9]+)?")
            if TOKEN.fullmatch(request_id.rsplit(".", 1)[-1]):  # a rendezvous_id itself
                alternatives.append(rf"{escaped}\.[0-9]+")
        alternatives += [rf"{re.escape(prefix)}.*" for prefix in self.prefixes]
        object.__setattr__(self, "_pattern", re.compile("|".join(alternatives), re.S))

    def matches(self, request_id: str) -> bool:
        return self._pattern.fullmatch(request_id) is not None  # type: ignore[attr-defined]

    @property
    def needles(self) -> tuple[str, ...]:
        """Texts every matching id contains: files are searched for them first."""
        return (*self.ids, *self.prefixes)

    def describe(self) -> str:
        said = [f"id {i!r} (and its gateway rows {i}.<token>.<row>)" for i in self.ids]
        said += [f"ids starting {p!r}" for p in self.prefixes]
        return ", ".join(said)


@dataclass(frozen=True)
class Located:
    """Where an archived row of a forgotten request came from in Kafka."""

    topic: str
    """The logical topic (``input``, ``decisions``, ...)."""
    partition: int
    offset: int
    timestamp_ms: int | None
    request_id: str


@dataclass(frozen=True)
class Forgotten:
    """What a forget did: rows removed per rewritten (or deleted) file, and where each
    removed row was in Kafka."""

    files: dict[Path, int]
    located: tuple[Located, ...] = ()

    @property
    def rows(self) -> int:
        return sum(self.files.values())


def forget(root: Path, request: str | Selector) -> Forgotten:
    """Remove every row of ``request`` (a request id, or a :class:`Selector`: its key, or
    its value's ``id``) from every topic of the archive, rewriting each file that holds
    one, atomically. Only finished files are read: see ``rendezvous archive forget`` for
    the decoy's buffer."""
    root = Path(root)
    if not root.is_dir():
        raise ArchiveError(f"no archive at {root} (not a directory)")
    selector = request if isinstance(request, Selector) else Selector(ids=(request,))
    changed = {}
    located: list[Located] = []
    for path in list_files(root):
        table = pq.read_table(path)
        drop, ids = _rows_of(table, selector)
        if not drop.any():
            continue
        rows = np.flatnonzero(drop)
        for i, found_id in zip(rows, ids, strict=True):
            located.append(Located(table["topic"][int(i)].as_py(),
                                   table["partition"][int(i)].as_py(),
                                   table["offset"][int(i)].as_py(),
                                   table["timestamp_ms"][int(i)].as_py(), found_id))
        keep = table.filter(pa.array(~drop))
        if keep.num_rows:
            _rewrite(path, keep)
        else:
            path.unlink()
            fsync_dir(path.parent)
        changed[path] = int(drop.sum())
    return Forgotten(changed, tuple(located))


def _rows_of(table: pa.Table, selector: Selector) -> tuple[np.ndarray, list[str]]:
    """A boolean mask of the rows of the selected requests, and each one's id in order."""
    keys, values = table.column("key"), table.column("value")
    mask = np.zeros(table.num_rows, dtype=bool)
    ids: dict[int, str] = {}
    maybe_key = np.zeros(table.num_rows, dtype=bool)
    maybe_value = np.zeros(table.num_rows, dtype=bool)
    for needle in selector.needles:  # only rows that mention one are decoded
        maybe_key |= np.asarray(pc.match_substring(keys, needle).fill_null(False))
        maybe_value |= np.asarray(pc.match_substring(values, needle).fill_null(False))
    for i in np.flatnonzero(maybe_key):
        raw = keys[int(i)].as_py()
        text = raw.decode(errors="replace") if raw is not None else ""
        if selector.matches(text):
            mask[i], ids[int(i)] = True, text
    for i in np.flatnonzero(maybe_value & ~mask):
        try:
            body = msgspec.json.decode(values[int(i)].as_py())
        except msgspec.DecodeError:
            continue
        found = body.get("id") if isinstance(body, dict) else None
        if isinstance(found, str) and selector.matches(found):
            mask[i], ids[int(i)] = True, found
    return mask, [ids[int(i)] for i in np.flatnonzero(mask)]


def _rewrite(path: Path, table: pa.Table) -> None:
    with pq.ParquetFile(path) as original:
        compression = original.metadata.row_group(0).column(0).compression.lower()
    if compression == "uncompressed":  # how Parquet names what pyarrow writes as "none"
        compression = "none"
    temp = path.with_name(f".{path.name}.forget{TEMP_SUFFIX}")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as out:
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
