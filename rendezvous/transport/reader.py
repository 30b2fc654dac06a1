"""Reading one topic's partitions by hand (no group join): to their end, or on as records come.

Every reader that is not a consuming service reads through :class:`TopicReader`:
serve's recovery of answered ids, the control topic, the demo's and the
benchmarks' result readers, the tests. So the end of a partition is decided in
one place: librdkafka's end-of-partition event is trusted only at or past the
high watermark the partition had when it was assigned, because one can come
before the first fetch of a new assignment (a topic just created, a broker just
restarted) at a lower offset. With ``read_committed`` (the default) the end of a
partition with an open transaction is reached once that transaction ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_STORED,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from rendezvous.settings import Settings
from rendezvous.transport.clients import is_fatal, make_reader
from rendezvous.transport.errors import TransportError

log = logging.getLogger(__name__)

__all__ = ["OFFSET_BEGINNING", "OFFSET_END", "OFFSET_STORED", "NotAtEnd", "TopicReader"]


class NotAtEnd(TransportError, TimeoutError):
    """A topic's partitions were not read to their end in the time given."""


class TopicReader:
    """Reads partitions of ``topic`` from ``start``: an offset for every partition
    (``OFFSET_BEGINNING``, ``OFFSET_END`` = the high watermark now, ``OFFSET_STORED`` =
    ``group``'s committed offset, or a number), or one per partition as a mapping.
    Without ``group`` the reader has a group of its own, never joined nor committed to.
    ``config`` adds to the consumer's configuration.

    A new topic's metadata can lag its creation: the partitions are listed once each
    has a leader, waiting at most ``leader_wait_s``.
    """

    def __init__(self, settings: Settings, topic: str,
                 start: int | Mapping[int, int] = OFFSET_BEGINNING, *, name: str = "reader",
                 group: str | None = None, leader_wait_s: float = 10.0,
                 config: Mapping[str, Any] | None = None) -> None:
        self.topic = topic
        self.consumer = make_reader(settings, name, group, **(config or {}))
        self.ends: dict[int, int] = {}
        """Per assigned partition, its high watermark when it was assigned."""
        self.at_end: set[int] = set()
        """Partitions read to their end, as of the last poll."""
        if isinstance(start, Mapping):
            self.assign(start)
        else:
            self.assign(dict.fromkeys(self._led_partitions(leader_wait_s), start))

    @property
    def partitions(self) -> list[int]:
        return sorted(self.ends)

    def _led_partitions(self, timeout_s: float) -> list[int]:
        give_up = time.monotonic() + timeout_s
        while True:
            meta = self.consumer.list_topics(self.topic, timeout=10).topics[self.topic]
            led = all(p.leader >= 0 for p in meta.partitions.values())
            if (meta.partitions and led) or time.monotonic() >= give_up:
                return sorted(meta.partitions)
            time.sleep(0.1)

    def high_watermark(self, partition: int, topic: str | None = None) -> int:
        """The partition's high watermark now (a broker round trip)."""
        tp = TopicPartition(topic or self.topic, partition)
        return int(self.consumer.get_watermark_offsets(tp, timeout=10)[1])

    def assign(self, starts: Mapping[int, int]) -> None:
        """Read these partitions (and no others) from these offsets, from now on."""
        self.ends = {p: self.high_watermark(p) for p in starts}
        self.at_end = set()
        stored = self._committed([p for p, o in starts.items() if o == OFFSET_STORED])
        resolved = {OFFSET_END: self.ends, OFFSET_STORED: stored}
        self.consumer.assign([TopicPartition(self.topic, p, resolved[o][p] if o in resolved else o)
                              for p, o in starts.items()])

    def _committed(self, partitions: list[int], timeout_s: float = 30.0) -> dict[int, int]:
        """The group's committed offsets (else the beginning), asked for here rather than
        left to the consumer: its own fetch, refused while a new broker elects the group's
        coordinator, was seen not to be retried."""
        if not partitions:
            return {}
        give_up = time.monotonic() + timeout_s
        while True:
            try:
                found = self.consumer.committed(
                    [TopicPartition(self.topic, p) for p in partitions], timeout=10)
                return {tp.partition: tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
                        for tp in found}
            except KafkaException:
                if time.monotonic() > give_up:
                    raise
                time.sleep(0.2)

    def poll(self, timeout_s: float = 0.1, max_records: int = 1000) -> list[Message]:
        """The records that have arrived, up to ``max_records``, waiting at most ``timeout_s``
        for the first one (``consume(n, t)`` would wait out ``t`` for ``n``: at low rates
        that wait would count in every latency measured). A fatal error raises
        :class:`KafkaException`; transient ones are logged."""
        first = self.consumer.poll(timeout_s)
        if first is None:
            return []
        records = [first, *self.consumer.consume(max_records - 1, 0)] if max_records > 1 \
            else [first]
        good = []
        for record in records:
            error = record.error()
            if error is None:
                self.at_end.discard(record.partition())
                good.append(record)
            elif error.code() == KafkaError._PARTITION_EOF:
                partition = record.partition()
                if partition in self.ends and (record.offset() or 0) >= self.ends[partition]:
                    self.at_end.add(partition)
            elif is_fatal(error):
                raise KafkaException(error)
            else:  # transient (a topic just created, a broker restarting): go on
                log.warning("reading %s: %s", self.topic, error)
        return good

    def caught_up(self) -> bool:
        """Whether every assigned partition is read to its end (as of the last poll)."""
        return self.at_end >= self.ends.keys()

    def read_to_end(self, timeout_s: float = 60.0, max_records: int = 5000) -> Iterator[Message]:
        """Every record up to the end of each partition; :class:`NotAtEnd` after ``timeout_s``."""
        give_up = time.monotonic() + timeout_s
        while not self.caught_up():
            if time.monotonic() > give_up:
                raise NotAtEnd(f"{self.topic}: partitions {sorted(self.ends.keys() - self.at_end)}"
                               f" not read to their end in {timeout_s:.0f} s")
            yield from self.poll(0.05, max_records)

    def commit(self) -> None:
        """Commit the positions read so far to the reader's group (synchronously)."""
        self.consumer.commit(offsets=self.consumer.position(self.consumer.assignment()),
                             asynchronous=False)

    def close(self) -> None:
        self.consumer.close()

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
