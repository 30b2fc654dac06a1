"""Buffer archive record batches in memory and roll them into Parquet files durably.

A roll writes each buffer under a hidden temporary name, fsyncs it, renames it
to its final name and fsyncs the directory, so a file with a final name is
always complete and survives a power cut. Only then may the caller commit the
offsets the files hold.

A roll is paced: it encodes row groups of at most :data:`ROW_GROUP_ROWS` rows and
pauses after each as the decoy's CPU budget says. Measured on two cores: an
unpaced roll (a burst of Parquet encoding and compression of ~10k records)
stalled every hop of the pipeline for 30-100 ms, even niced (docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from rendezvous.archive.layout import TEMP_SUFFIX, file_name, hour_directory
from rendezvous.archive.schema import ARCHIVE_SCHEMA
from rendezvous.decoy.batches import GroupKey
from rendezvous.process import CpuBudget

log = logging.getLogger(__name__)

ROW_GROUP_ROWS = 2048
"""Rows encoded at a time during a roll: the longest CPU burst between two pauses."""


@dataclass(frozen=True)
class RolledFile:
    """One durable archive file written by a roll."""

    path: Path
    topic: str
    partition: int
    records: int


@dataclass
class _Buffer:
    """The batches of one (topic, partition, hour) not yet in a file."""

    batches: list[pa.RecordBatch] = field(default_factory=list)
    first_offset: int | None = None
    records: int = 0


class ArchiveWriter:
    """Per-(topic, partition, hour) buffers under ``root``, rolled all at once by :meth:`roll`."""

    def __init__(self, root: Path, compression: str = "zstd",
                 budget: CpuBudget | None = None) -> None:
        self.root = Path(root)
        self.compression = compression
        self.budget = budget
        """The CPU share a paced roll keeps to (None = no pauses)."""
        self._buffers: dict[GroupKey, _Buffer] = {}
        self._bytes = 0
        self._since: float | None = None

    @property
    def buffered_bytes(self) -> int:
        """Arrow bytes held in memory (uncompressed), what ``--roll-bytes`` is compared with."""
        return self._bytes

    @property
    def buffered_records(self) -> int:
        return sum(b.records for b in self._buffers.values())

    def age_s(self) -> float:
        """Seconds since the oldest buffered record was added (0 when nothing is buffered)."""
        return 0.0 if self._since is None else time.monotonic() - self._since

    def add(self, group: GroupKey, batch: pa.RecordBatch) -> None:
        """Buffer ``batch``, whose rows all belong to ``group`` and come in offset order."""
        if batch.num_rows == 0:
            return
        buffer = self._buffers.setdefault(group, _Buffer())
        if buffer.first_offset is None:
            buffer.first_offset = int(batch.column("offset")[0].as_py())
        buffer.batches.append(batch)
        buffer.records += batch.num_rows
        self._bytes += batch.nbytes
        if self._since is None:
            self._since = time.monotonic()

    def discard(self) -> int:
        """Forget everything buffered (its offsets were not committed, so it is read again);
        returns how many records that was."""
        dropped = self.buffered_records
        self._buffers.clear()
        self._bytes = 0
        self._since = None
        return dropped

    def roll(self, paced: bool = True) -> list[RolledFile]:
        """Write every buffer to its own durable file; returns what was written.

        ``paced=False`` writes at full speed (a revoke or a shutdown must not wait).
        On error, no buffer is dropped and no temporary file is left behind,
        so the caller may retry or exit without committing.
        """
        if not self._buffers:
            return []
        staged: list[tuple[Path, Path]] = []
        rolled: list[RolledFile] = []
        try:
            for (topic, partition, hour), buffer in self._buffers.items():
                final = hour_directory(self.root, topic, hour) / file_name(
                    partition, buffer.first_offset or 0)
                temp = final.with_name(f".{final.name}{TEMP_SUFFIX}")
                make_dirs(final.parent)
                staged.append((temp, final))
                rolled.append(RolledFile(final, topic, partition, buffer.records))
                self._write_synced(pa.Table.from_batches(buffer.batches, ARCHIVE_SCHEMA), temp,
                                   self.budget if paced else None)
        except BaseException:
            for temp, _final in staged:
                with contextlib.suppress(FileNotFoundError):
                    temp.unlink()
            raise
        for temp, final in staged:
            os.replace(temp, final)
        for directory in {final.parent for _temp, final in staged}:
            fsync_dir(directory)
        self._buffers.clear()
        self._bytes = 0
        self._since = None
        return rolled

    def _write_synced(self, table: pa.Table, path: Path, budget: CpuBudget | None) -> None:
        with open_private(path) as out:
            # Dictionary encoding only pays off for the low-cardinality columns;
            # trying it on raw payloads costs CPU for nothing.
            with pq.ParquetWriter(out, ARCHIVE_SCHEMA, compression=self.compression,
                                  use_dictionary=["schema_version", "topic", "partition",
                                                  "timestamp_type"]) as parquet:
                for group in table.to_batches(max_chunksize=ROW_GROUP_ROWS):
                    parquet.write_batch(group)
                    if budget is not None:
                        time.sleep(budget.pause_s())
            out.flush()
            os.fsync(out.fileno())


FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
"""The archive holds every request's input: only its owner may read it."""


def open_private(path: Path) -> BinaryIO:
    """``path`` opened for writing (created or truncated) with mode 0600, whatever the
    umask, for its owner alone."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)  # an existing file keeps its mode through O_CREAT
    return os.fdopen(fd, "wb")


def fsync_dir(directory: Path) -> None:
    """Make the entries of ``directory`` (new and renamed files) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(directory: Path) -> None:
    """``mkdir -p`` of mode 0700 that also fsyncs the parent of each directory it creates."""
    missing = []
    current = Path(directory)
    while not current.is_dir():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=DIRECTORY_MODE)
            path.chmod(DIRECTORY_MODE)  # mkdir's mode is masked by the umask: exact here
        fsync_dir(path.parent)
