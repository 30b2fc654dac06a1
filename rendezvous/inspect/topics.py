"""Time-bounded reads of the pipeline's topics: never a full scan.

The producer's partitioner is unknown (librdkafka's default is not Java's, and a client
may choose its own), so the input is looked for on every partition, from the first
offset at ``--since`` (``offsets_for_times``) to the first at ``--until``. The records a
request leads to are then read where co-partitioning puts them: the input's partition
number of ``scores``, ``scored`` and ``decisions``, from a little before the input's
time to its deadline and a margin after it. Dead letters and feedback have no
partition of their own to go by: every partition, over the window.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from rendezvous.archive.retention import Selector
from rendezvous.inspect.records import Found, needle_of, request_of
from rendezvous.inspect.window import Window
from rendezvous.settings import Settings
from rendezvous.transport.clients import make_reader

BATCH = 10_000
"""Records taken from the client at a time."""
BEFORE_MS = 5_000
"""How far before the input's time its scores may be (a worker's clock ahead of the
producer's), and the input before a dead letter's."""
AFTER_MS = 10_000
"""How long after a request's deadline its late answers, result and decision are looked for."""


@dataclass(frozen=True)
class Span:
    """Offsets ``[start, stop)`` of one partition, and whether the read got to ``stop``."""

    start: int
    stop: int


@dataclass
class Read:
    """What a read found, and which partitions it could not finish in time."""

    found: list[Found]
    unfinished: list[str]


class TopicSearch:
    """One reading client for every topic of one ``inspect`` (no group joined, nothing
    committed)."""

    def __init__(self, settings: Settings, timeout_s: float = 30.0) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        self.consumer: Consumer = make_reader(settings, "inspect")

    def close(self) -> None:
        self.consumer.close()

    def partitions(self, topic: str) -> list[int]:
        """The partitions of ``topic`` (full name); none when it does not exist."""
        meta = self.consumer.list_topics(topic, timeout=self.timeout_s).topics.get(topic)
        if meta is None or meta.error is not None:
            return []
        return sorted(meta.partitions)

    def spans(self, topic: str, ranges: Mapping[int, tuple[int, int]]) -> dict[int, Span]:
        """Per partition, the offsets of its records with a time in ``[from, to)``."""
        if not ranges:
            return {}
        firsts = self._offsets_at(topic, {p: start for p, (start, _) in ranges.items()})
        lasts = self._offsets_at(topic, {p: end for p, (_, end) in ranges.items()})
        spans = {}
        for p in ranges:
            first, last = firsts[p], lasts[p]
            high = 0
            if first < 0 or last < 0:  # no record that late: up to the end now
                high = int(self.consumer.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=self.timeout_s)[1] or 0)
            start = high if first < 0 else first
            stop = high if last < 0 else last
            if stop > start:
                spans[p] = Span(start, stop)
        return spans

    def _offsets_at(self, topic: str, times: Mapping[int, int]) -> dict[int, int]:
        """Per partition, the first offset at or after its time (-1: none that late). One
        call per set of times: librdkafka answers once per partition asked."""
        found = self.consumer.offsets_for_times(
            [TopicPartition(topic, p, int(ms)) for p, ms in times.items()],
            timeout=self.timeout_s)
        return {tp.partition: int(tp.offset) for tp in found}

    def read(self, logical: str, ranges: Mapping[int, tuple[int, int]], selector: Selector
             ) -> Read:
        """Every record of ``logical`` in the time ``ranges`` (per partition) that belongs
        to a request ``selector`` names."""
        topic = self.settings.topic(logical)
        spans = self.spans(topic, ranges)
        needle = needle_of(selector)
        found: list[Found] = []

        def keep(record: Message) -> None:
            rid = request_of(record.key(), record.value(), selector, needle)
            if rid is not None:
                found.append(_found(logical, record, rid))

        unfinished = self._scan(topic, spans, keep)
        return Read(found, unfinished)

    def read_all(self, logical: str, window: Window, selector: Selector) -> Read:
        """:meth:`read` over every partition of ``logical`` for the whole ``window``."""
        partitions = self.partitions(self.settings.topic(logical))
        return self.read(logical, dict.fromkeys(partitions, (window.start_ms, window.end_ms)),
                         selector)

    def read_compacted(self, logical: str) -> list[Message]:
        """Every record of a (compacted, small) topic, e.g. ``control``."""
        topic = self.settings.topic(logical)
        spans = {}
        for p in self.partitions(topic):
            low, high = self.consumer.get_watermark_offsets(TopicPartition(topic, p),
                                                            timeout=self.timeout_s)
            if high > low:
                spans[p] = Span(int(low), int(high))
        records: list[Message] = []
        self._scan(topic, spans, records.append)
        return records

    def _scan(self, topic: str, spans: Mapping[int, Span], each: Callable[[Message], None]
              ) -> list[str]:
        """Read every span, handing each record to ``each``; the partitions not read to
        their stop offset within the time allowed."""
        if not spans:
            return []
        consumer = self.consumer
        consumer.assign([TopicPartition(topic, p, s.start) for p, s in spans.items()])
        left = {p: s.stop for p, s in spans.items()}
        give_up = time.monotonic() + self.timeout_s
        try:
            while left and time.monotonic() < give_up:
                # What is fetched already, else wait for one record: consume(n, t) would
                # wait out t for n records, at the end of every partition.
                for record in consumer.consume(BATCH, 0) or consumer.consume(1, 0.1):
                    error = record.error()
                    partition, offset = record.partition() or 0, record.offset() or 0
                    stop = left.get(partition)
                    if error is not None:
                        if error.code() != KafkaError._PARTITION_EOF:
                            if error.fatal():
                                raise KafkaException(error)
                            continue
                        if stop is not None and offset >= stop:  # the end, at --until
                            del left[partition]
                        continue
                    if stop is None:
                        continue  # done already: a record fetched before it was paused
                    if offset < stop:
                        each(record)
                    # Transaction markers take offsets too: the next record may be past it.
                    if offset + 1 >= stop:
                        del left[partition]
                        consumer.pause([TopicPartition(topic, partition)])
        finally:
            consumer.unassign()
        return [f"{topic}[{p}] (offsets {spans[p].start}..{stop}, not read to the end in "
                f"{self.timeout_s:.0f} s)" for p, stop in sorted(left.items())]


def _found(logical: str, record: Message, rid: str) -> Found:
    kind, ts = record.timestamp()
    headers = [(k, v if isinstance(v, bytes) else (v or "").encode())
               for k, v in _pairs(record.headers())]
    return Found(logical, record.partition() or 0, record.offset() or 0,
                 ts if kind else None, record.key(), record.value(), rid, headers)


def _pairs(headers: object) -> list[tuple[str, str | bytes | None]]:
    if isinstance(headers, dict):
        return list(headers.items())
    return list(headers or [])  # type: ignore[call-overload]


def around(inputs: Iterable[tuple[int, float, float]], window: Window
           ) -> dict[int, tuple[int, int]]:
    """Per partition, the time range holding the records that follow its inputs, from
    ``(partition, time, deadline)`` of each (epoch ms): a little before the first input to
    a margin after the last deadline, never past the window's end."""
    ranges: dict[int, tuple[int, int]] = {}
    for partition, at, deadline in inputs:
        start, end = int(at) - BEFORE_MS, min(int(deadline) + AFTER_MS, window.end_ms)
        if partition in ranges:
            start, end = min(start, ranges[partition][0]), max(end, ranges[partition][1])
        ranges[partition] = (start, max(end, start + 1))
    return ranges
