"""After an assignment: which requests of a partition were already answered.

The ``scored`` topic is the changelog: a request at or after the committed
input offset may have been answered before a crash or a rebalance, and its
answer, if committed, is on the same partition number of ``scored``. Reading
that tail (``read_committed``) from shortly before the committed input
record's timestamp gives the ids not to answer again.
"""

from __future__ import annotations

import logging
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from rendezvous.messages import Undecodable, decode_scored
from rendezvous.settings import Settings
from rendezvous.transport.bad_records import BadRecords, where

log = logging.getLogger(__name__)

# Answers are written after their request; the margin covers clock skew between
# producers and the longest deadline.
MARGIN_MS = 120_000


class RecoveryError(RuntimeError):
    """The answered ids of a partition could not be read back."""


def answered_ids(settings: Settings, committed_inputs: dict[int, int | None],
                 timeout_s: float = 60.0) -> dict[int, set[str]]:
    """Per partition: the ids answered on ``scored`` since its committed input offset.

    All partitions are read at once, to their ends (``read_committed``).
    """
    consumer = Consumer(settings.kafka_config(**{
        "group.id": f"{settings.group('recovery')}-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
        "fetch.wait.max.ms": 10,
    }))
    try:
        starts = {p: _start_offset(consumer, settings, p, c) for p, c in committed_inputs.items()}
        consumer.assign([TopicPartition(settings.topic("scored"), p, offset)
                         for p, offset in starts.items()])
        ids: dict[int, set[str]] = {p: set() for p in starts}
        bad = BadRecords("recovery")
        reading = set(starts)
        give_up = time.monotonic() + timeout_s
        while reading:
            if time.monotonic() > give_up:
                raise RecoveryError(
                    f"could not read {settings.topic('scored')} partitions {sorted(reading)} to "
                    f"their end in {timeout_s:.0f} s (an open transaction of another instance?); "
                    "restart, and give every serve instance its own --instance-id"
                )
            for record in consumer.consume(5000, 0.05):
                error = record.error()
                if error is None:
                    try:
                        ids[record.partition()].add(decode_scored(record.value()).id)
                    except Undecodable as exc:  # not ours: nothing it could have answered
                        bad.skip("scored", where(record), str(exc))
                elif error.code() == KafkaError._PARTITION_EOF:
                    reading.discard(record.partition())
                else:
                    log.warning("recovery: %s", error)
        return ids
    finally:
        consumer.close()


def _start_offset(consumer: Consumer, settings: Settings, partition: int,
                  committed_input: int | None) -> int:
    if committed_input is None or committed_input < 0:
        return OFFSET_BEGINNING
    since = _timestamp_at(consumer, settings.topic("input"), partition, committed_input)
    if since is None:  # nothing at the committed offset yet: nothing to skip
        since = _now_ms()
    found = consumer.offsets_for_times(
        [TopicPartition(settings.topic("scored"), partition, int(since - MARGIN_MS))], timeout=10
    )[0]
    return found.offset if found.offset >= 0 else _end(consumer, settings, partition)


def _timestamp_at(consumer: Consumer, topic: str, partition: int, offset: int) -> float | None:
    consumer.assign([TopicPartition(topic, partition, offset)])
    for _ in range(100):
        for record in consumer.consume(1, 0.1):
            if record.error() is None:
                return float(record.timestamp()[1])
            if record.error().code() == KafkaError._PARTITION_EOF:
                return None
    return None


def _end(consumer: Consumer, settings: Settings, partition: int) -> int:
    _low, high = consumer.get_watermark_offsets(
        TopicPartition(settings.topic("scored"), partition), timeout=10
    )
    return int(high)


def _now_ms() -> float:
    return time.time() * 1000
