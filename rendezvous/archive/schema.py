"""The raw archive's columns, its schema version, and upgrades from older versions.

Every archive file is plain Parquet; DuckDB, polars or pandas read it without
this package. One row is one Kafka record, exactly as the broker delivered it:

| column | type | meaning |
|---|---|---|
| `schema_version` | int16 | archive layout version the row was written with (1) |
| `topic` | string | logical topic: `input` or `decisions` |
| `partition` | int32 | Kafka partition |
| `offset` | int64 | Kafka offset within the partition |
| `key` | binary, nullable | record key, raw bytes |
| `value` | binary, nullable | record value, raw bytes exactly as produced, valid or not |
| `headers` | list<struct<key: string, value: binary>>, nullable | record headers, in order |
| `timestamp_ms` | int64, nullable | record timestamp, epoch ms (null if the broker gave none) |
| `timestamp_type` | int8 | 0 = none, 1 = CreateTime (producer), 2 = LogAppendTime (broker) |
| `arrival_ms` | int64, nullable | epoch ms when the decoy polled the record (null in v0 files) |

Files live at ``<archive>/<topic>/date=YYYY-MM-DD/hour=HH/part-<partition>-<first
offset>-<uuid>.parquet`` (hive-style; date and hour of the record timestamp, in
UTC). A record may appear in more than one file (the decoy is at-least-once
after a crash): deduplicate on ``(topic, partition, offset)``, as
:func:`rendezvous.archive.read_archive` does. The file's Parquet key-value
metadata holds ``rendezvous.archive.schema_version``.

Version history: 0 = no ``arrival_ms`` and no ``schema_version`` column; 1 =
the table above.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

from rendezvous.archive.errors import UnreadableFile

SCHEMA_VERSION = 1
"""Version of the files this code writes; the reader maps every older one to it."""

VERSION_KEY = b"rendezvous.archive.schema_version"
"""Parquet key-value metadata key holding the file's schema version."""

HEADER_TYPE = pa.list_(pa.struct([("key", pa.string()), ("value", pa.binary())]))

ARCHIVE_SCHEMA = pa.schema(
    [
        pa.field("schema_version", pa.int16(), nullable=False),
        pa.field("topic", pa.string(), nullable=False),
        pa.field("partition", pa.int32(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),
        pa.field("key", pa.binary()),
        pa.field("value", pa.binary()),
        pa.field("headers", HEADER_TYPE),
        pa.field("timestamp_ms", pa.int64()),
        pa.field("timestamp_type", pa.int8(), nullable=False),
        pa.field("arrival_ms", pa.int64()),
    ],
    metadata={VERSION_KEY: str(SCHEMA_VERSION).encode()},
)
"""The schema of version-1 files, and of every table the reader returns."""


def file_version(schema: pa.Schema) -> int:
    """The schema version a file declares in its metadata (0 when it declares none)."""
    raw = (schema.metadata or {}).get(VERSION_KEY)
    if raw is None:
        return 0
    try:
        return int(raw)
    except ValueError:
        raise UnreadableFile(f"schema version {raw!r} is not a number") from None


def _from_v0(table: pa.Table) -> pa.Table:
    """Version 0 lacked ``arrival_ms`` (unknown, so null) and the ``schema_version`` column."""
    n = table.num_rows
    table = table.append_column(pa.field("arrival_ms", pa.int64()), pa.nulls(n, pa.int64()))
    return table.add_column(0, pa.field("schema_version", pa.int16(), nullable=False),
                            pa.repeat(pa.scalar(0, pa.int16()), n))


UPGRADES: dict[int, Callable[[pa.Table], pa.Table]] = {0: _from_v0}
"""``UPGRADES[v]`` turns a table of version ``v`` into one of version ``v + 1``."""


def to_current(table: pa.Table, version: int) -> pa.Table:
    """A table read from a file of ``version``, in the current schema.

    Raises :class:`UnreadableFile` for a version newer than this code knows.
    """
    if version > SCHEMA_VERSION:
        raise UnreadableFile(
            f"schema version {version} is newer than this rendezvous reads "
            f"({SCHEMA_VERSION}); upgrade rendezvous"
        )
    for step in range(version, SCHEMA_VERSION):
        table = UPGRADES[step](table)
    try:
        return table.select(ARCHIVE_SCHEMA.names).cast(ARCHIVE_SCHEMA)
    except (KeyError, pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise UnreadableFile(f"columns do not match schema version {version}: {exc}") from exc
