"""The at-least-once relay loop: poll a micro-batch, hand it to a handler that produces its
outputs, commit the batch's input offsets once the broker acknowledged every output.

Delivery is pipelined: the next batch is polled and handled while the previous
one's acknowledgements come in, and acknowledged batches are committed in order,
every ``COMMIT_INTERVAL_S`` (:class:`Pipeline`). A failed delivery stops the loop
with nothing of that batch committed, so a restart handles it again.
SIGTERM/SIGINT (through a :class:`~rendezvous.transport.clients.Stopper`) finish
the in-flight batch, wait for its acknowledgements, commit, and return. The model
worker and the bare-relay benchmark both run it, so both pay the same Kafka costs.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from rendezvous.transport.clients import Stopper, flush_or_raise, next_offsets, poll_batch
from rendezvous.transport.errors import DeliveryFailed

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 64
"""Batches awaiting acknowledgement before the loop blocks on them (bounds redelivery)."""
COMMIT_INTERVAL_S = 0.05

Handle = Callable[[list[Message], Callable[..., None]], int]
"""Processes one batch: produces its outputs with the given delivery callback, returns how many."""


class Tracked:
    """One batch's input offsets and the delivery reports still due for its outputs."""

    __slots__ = ("offsets", "pending", "error")

    def __init__(self, offsets: list[TopicPartition]) -> None:
        self.offsets = offsets
        self.pending = 0
        self.error: KafkaError | None = None

    def delivered(self, error: KafkaError | None, _record: Message) -> None:
        self.pending -= 1
        if error is not None and self.error is None:
            self.error = error


class Pipeline:
    """Commits each batch's input offsets, in order, once all of its outputs are acknowledged.

    Acknowledged offsets are committed at most every ``COMMIT_INTERVAL_S`` (one
    commit per batch of 1 would halve throughput); a crash handles at most
    that much more again.
    """

    def __init__(self, consumer: Consumer, producer: Producer,
                 max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.consumer, self.producer, self.max_in_flight = consumer, producer, max_in_flight
        self.queue: deque[Tracked] = deque()
        self.acked: dict[tuple[str, int], int] = {}
        self.commit_at = 0.0
        self.failed = False

    def begin(self, records: list[Message]) -> Tracked:
        tracked = Tracked(next_offsets(records))
        self.queue.append(tracked)
        return tracked

    def settle(self, sync: bool = False) -> None:
        """Serve delivery reports and commit the acknowledged prefix of batches."""
        self.producer.poll(0)
        if len(self.queue) > self.max_in_flight:
            flush_or_raise(self.producer)
        while self.queue and self.queue[0].pending <= 0:
            tracked = self.queue.popleft()
            if tracked.error is not None:
                self.failed = True
                raise refused(tracked.error)
            for tp in tracked.offsets:
                self.acked[(tp.topic, tp.partition)] = tp.offset
        now = time.monotonic()
        if self.acked and (sync or now >= self.commit_at):
            offsets = [TopicPartition(t, p, o) for (t, p), o in self.acked.items()]
            if sync:
                self.consumer.commit(offsets=offsets, asynchronous=False)
            else:
                self.consumer.commit(offsets=offsets, asynchronous=True)
            self.acked.clear()
            self.commit_at = now + COMMIT_INTERVAL_S

    def drain(self) -> None:
        """Wait for every acknowledgement and commit everything, synchronously."""
        if self.failed:
            return
        flush_or_raise(self.producer)
        self.settle(sync=True)

    def drop(self) -> None:
        """Forget uncommitted batches (partitions lost: their commits would be refused)."""
        self.producer.flush(10)
        self.queue.clear()
        self.acked.clear()


def consume_loop(consumer: Consumer, producer: Producer, topic: str, handle: Handle, *,
                 max_batch: int, max_wait_s: float, stopper: Stopper,
                 on_first_assign: Callable[[], None] = lambda: None,
                 on_poll: Callable[[list[Message], float], None] | None = None,
                 max_in_flight: int = MAX_IN_FLIGHT) -> None:
    """Run ``handle`` on micro-batches of ``topic`` until ``stopper`` is set, then drain.

    ``on_poll(records, seconds)`` observes every poll (``records`` may be empty);
    ``max_in_flight=0`` flushes after every batch (no pipelining).
    """
    pipeline = Pipeline(consumer, producer, max_in_flight)
    assigned_once = False

    def on_assign(_c: Consumer, partitions: list[TopicPartition]) -> None:
        nonlocal assigned_once
        log.info("assigned %s", _describe(partitions))
        if not assigned_once:
            assigned_once = True
            on_first_assign()

    def on_revoke(_c: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("revoked %s; committing what was handled", _describe(partitions))
        pipeline.drain()

    def on_lost(_c: Consumer, partitions: list[TopicPartition]) -> None:
        log.warning("lost %s; uncommitted batches will be handled again", _describe(partitions))
        pipeline.drop()

    consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    try:
        while not stopper.stopped:
            records = poll_batch(consumer, max_batch, max_wait_s)
            started = time.perf_counter()
            if records:
                tracked = pipeline.begin(records)
                try:
                    tracked.pending += handle(records, tracked.delivered)
                except KafkaException as exc:  # refused at once (e.g. an unknown partition)
                    raise refused(exc.args[0]) from exc
            if on_poll is not None:
                on_poll(records, time.perf_counter() - started)
            pipeline.settle()
        pipeline.drain()
    except BaseException:
        pipeline.failed = True  # close() runs on_revoke: it must commit nothing more
        raise
    finally:
        consumer.close()


def refused(error: object) -> DeliveryFailed:
    """The error of a batch whose outputs the broker (or the client) refused."""
    return DeliveryFailed(
        f"the broker refused a batch of outputs ({error}); its input offsets were not "
        "committed, so a restart handles it again (if it repeats, check the broker and "
        "`rendezvous topics list`: co-partitioned topics need the same partition count)")


def _describe(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"
