"""Kafka records to Arrow record batches of the archive schema, one pass per polled batch.

The hot path of the decoy: one Python loop reads each record's fields into
plain lists grouped by (topic, partition, hour); Arrow arrays are then built
once per group, never per record.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import Message

from rendezvous.archive.layout import HOUR_MS
from rendezvous.archive.schema import ARCHIVE_SCHEMA, HEADER_TYPE, SCHEMA_VERSION

GroupKey = tuple[str, int, int]
"""(logical topic, partition, epoch hour of the record timestamp)."""

_VERSION = pa.scalar(SCHEMA_VERSION, pa.int16())


def to_batches(records: list[Message], logical: dict[str, str],
               arrival_ms: int) -> dict[GroupKey, pa.RecordBatch]:
    """The ``records`` as archive record batches, one per (topic, partition, hour).

    ``logical`` maps full topic names to the logical names written in the
    ``topic`` column. Records without a broker timestamp are filed under their
    arrival hour.
    """
    # Keyed by the client's (topic, partition): never None for a consumed record.
    columns: dict[tuple[Any, Any, int], tuple[list, list, list, list, list, list]] = {}
    arrival_hour = arrival_ms // HOUR_MS
    for record in records:
        ts_type, ts = record.timestamp()
        group = (record.topic(), record.partition(), ts // HOUR_MS if ts_type else arrival_hour)
        lists = columns.get(group)
        if lists is None:
            lists = columns[group] = ([], [], [], [], [], [])
        offsets, keys, values, headers, stamps, types = lists
        offsets.append(record.offset())
        keys.append(record.key())
        values.append(record.value())
        headers.append(record.headers())
        stamps.append(ts if ts_type else None)
        types.append(ts_type)
    arrival = pa.scalar(arrival_ms, pa.int64())
    return {
        (logical[topic], partition, hour): _batch(logical[topic], partition, lists, arrival)
        for (topic, partition, hour), lists in columns.items()
    }


def _batch(topic: str, partition: int, lists: tuple[list, ...],
           arrival: pa.Scalar) -> pa.RecordBatch:
    offsets, keys, values, headers, stamps, types = lists
    n = len(offsets)
    return pa.RecordBatch.from_arrays(
        [
            pa.repeat(_VERSION, n),
            pa.repeat(pa.scalar(topic, pa.string()), n),
            pa.repeat(pa.scalar(partition, pa.int32()), n),
            pa.array(offsets, pa.int64()),
            pa.array(keys, pa.binary()),
            pa.array(values, pa.binary()),
            pa.array(headers, HEADER_TYPE),
            pa.array(stamps, pa.int64()),
            pa.array(types, pa.int8()),
            pa.repeat(arrival, n),
        ],
        schema=ARCHIVE_SCHEMA,
    )


def payload_bytes(batch: pa.RecordBatch) -> int:
    """Bytes of keys and values in ``batch`` (what the producers sent, without framing)."""
    total = 0
    for name in ("key", "value"):
        total += pc.sum(pc.binary_length(batch.column(name))).as_py() or 0
    return total
