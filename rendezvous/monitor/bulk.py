"""The monitor's reader of its busy topics: librdkafka batches, not faust's per-record path.

Every input and every decision reaches the monitor, two records per request.
Through faust each one costs a task, a stream event and several awaits
(``Consumer._drain_messages``), which capped the monitor's throughput (3,050
decisions/s measured in 2026-11, against ~55,000/s through this reader:
docs/benchmarks.md), so a backlog after a restart or a burst took minutes to
catch up within the CPU budget. Here a confluent-kafka consumer fetches them in
batches on a thread of its own and the event loop counts them.

Offsets are committed only for records whose counts are in the changelog (the
app commits after flushing its table), so a crash re-reads, never skips: a
restarted monitor may count a few records twice, as faust's own at-least-once
delivery did.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor

from confluent_kafka import KafkaException, Message, TopicPartition

from rendezvous.settings import Settings
from rendezvous.transport.clients import make_consumer, next_offsets, poll_batch

log = logging.getLogger(__name__)

BATCH = 5000
POLL_S = 0.25
"""Longest one poll waits on its thread (how soon a stop is noticed)."""


class BulkReader:
    """A consumer of ``topics`` in group ``group``, polled on a thread of its own."""

    def __init__(self, settings: Settings, group: str, topics: Iterable[str]) -> None:
        options = settings.monitor
        self.consumer = make_consumer(settings, group,
                                      **{"fetch.min.bytes": options.fetch_min_bytes,
                                         "fetch.wait.max.ms": options.fetch_wait_max_ms})
        self.consumer.subscribe(list(topics))
        self.read: dict[tuple[str, int], int] = {}
        """Next offset per (topic, partition) of the batches counted (handed out, and the
        next one asked for)."""
        self._committed: dict[tuple[str, int], int] = {}
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitor-reader")
        self._stopping = False

    async def batches(self) -> AsyncIterator[list[Message]]:
        """Batches of records until :meth:`stop`; the polls run on the reader's thread."""
        loop = asyncio.get_running_loop()
        while not self._stopping:
            records: list[Message] = await loop.run_in_executor(
                self._thread, poll_batch, self.consumer, BATCH, POLL_S)
            if records:
                yield records
                # asked for the next batch: this one is counted, so its offsets may be committed
                self.read.update(((tp.topic, tp.partition), tp.offset)
                                 for tp in next_offsets(records))

    def offsets(self) -> dict[tuple[str, int], int]:
        """What to commit once the counts of every batch counted so far are persisted."""
        return dict(self.read)

    def commit(self, offsets: dict[tuple[str, int], int], asynchronous: bool = True) -> None:
        """Commit ``offsets`` (from :meth:`offsets`) unless they are committed already; a
        failure is logged, not raised (the next commit covers them, and a restart re-reads
        what no commit did)."""
        if not offsets or offsets == self._committed:
            return
        # a list of TopicPartition: their == ignores the offset, so compare the dicts above
        partitions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            if asynchronous:
                self.consumer.commit(offsets=partitions, asynchronous=True)
            else:
                self.consumer.commit(offsets=partitions, asynchronous=False)
        except KafkaException as exc:
            log.warning("monitor offset commit failed: %s", exc)
            return
        self._committed = offsets

    def lag(self) -> dict[str, int]:
        """Records not read yet per topic, from the watermarks the fetches brought."""
        lag: dict[str, int] = {}
        for (topic, partition), offset in list(self.read.items()):
            _low, high = self.consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                             cached=True)
            if high >= 0:
                lag[topic] = lag.get(topic, 0) + max(high - offset, 0)
        return lag

    def stop(self) -> None:
        """Stop handing out batches (the poll under way ends within ``POLL_S``)."""
        self._stopping = True

    def close(self, offsets: dict[tuple[str, int], int]) -> None:
        """Wait for the poll under way, commit ``offsets`` and leave the group."""
        self._stopping = True
        self._thread.shutdown(wait=True)
        self._committed = {}  # an asynchronous commit of the same offsets may have failed
        self.commit(offsets, asynchronous=False)
        self.consumer.close()
