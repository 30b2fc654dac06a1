"""The default way serve publishes: every result produced the moment it is decided.

No transaction: the idempotent producer (acks=all) writes each result, decision
and dead letter at once, so a result is visible one broker round trip after its
decision. Exactly one result per request still holds because input offsets are
committed only once every result decided before them is acknowledged: a crash
re-reads the requests whose results may be missing, and recovery finds on the
``scored`` partition the ones that were written after all (:mod:`.recovery`).

This is the Kafka :class:`~.ports.Sink` of the default mode. Each loop step's
records form one :class:`Step` holding the input offsets it
accounts for; steps complete in order, and the offsets of the newest completed
step are committed every ``commit_interval_s`` from the consumer's own thread.
Return addresses (Redis) are notified once a result is acknowledged, on a
small thread of their own, so a caller never sees a result Kafka might lose.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from prometheus_client import Histogram

from rendezvous.messages import Scored
from rendezvous.service.ports import Offsets, OutRecord, Redo
from rendezvous.transport.clients import produce

log = logging.getLogger(__name__)

ACK_MS = Histogram("rendezvous_serve_ack_ms", "Produce-to-acknowledgement time of results",
                   buckets=(0.5, 1, 2, 3, 5, 8, 13, 20, 50, 100, 1000))


class Step:
    """The records of one loop step and the delivery reports still due for them."""

    __slots__ = ("error", "offsets", "pending", "replies", "started")

    def __init__(self) -> None:
        self.pending = 0
        self.error: KafkaError | None = None
        self.offsets: Offsets = []
        self.replies: list[tuple[str, Scored]] = []
        self.started = 0.0  # when its first record was produced

    def delivered(self, error: KafkaError | None, _record: Message) -> None:
        self.pending -= 1
        if error is not None and self.error is None:
            self.error = error


class DeliveryFailed(Redo):
    """A result could not be written; what was decided since the last commit must be redone."""


class Publisher:
    """Produces results at once; commits input offsets behind their acknowledgements."""

    fences_zombies = False

    def __init__(self, consumer: Consumer, producer: Producer,
                 deliver: Callable[[Sequence[tuple[str, Scored]]], None],
                 commit_interval_s: float = 0.05, stuck_s: float = 30.0) -> None:
        self._consumer, self._producer, self._deliver = consumer, producer, deliver
        self._commit_interval_s, self._stuck_s = commit_interval_s, stuck_s
        self._queue: deque[Step] = deque()
        self._step = Step()
        self._acked: Offsets | None = None
        self._commit_at = 0.0
        self._replier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="replies")
        self._ack_ms: deque[float] = deque(maxlen=512)

    def write(self, record: OutRecord) -> None:
        topic, value, key, partition, headers = record
        step = self._step
        if not step.started:
            step.started = time.perf_counter()
        step.pending += 1
        produce(self._producer, topic, value, key, partition=partition, headers=headers,
                on_delivery=step.delivered)

    def reply(self, reply_to: str, scored: Scored) -> None:
        self._step.replies.append((reply_to, scored))

    def end_step(self, offsets: Callable[[], Offsets] | None) -> bool:
        """Close this step: its records account for input ``offsets()``; serve delivery
        reports, notify callers of acknowledged results, commit when due."""
        self._close_step(offsets() if offsets is not None else [])
        if self._acked and time.monotonic() >= self._commit_at:
            self._commit(asynchronous=True)
        return True

    def _close_step(self, offsets: Offsets) -> None:
        step = self._step
        if step.pending or step.replies or offsets:
            step.offsets = offsets
            self._queue.append(step)
            self._step = Step()
        self._settle()

    def commit_all(self, offsets: Offsets) -> None:
        """Everything written so far acknowledged and ``offsets`` committed (rebalance, stop);
        when a result could not be written, nothing more is committed: the next owner
        re-reads those requests."""
        try:
            self._close_step(offsets)
            self.drain(self._stuck_s)
        except DeliveryFailed as exc:
            log.warning("%s; the uncommitted requests are decided again", exc)
            self.discard()

    def drain(self, timeout_s: float = 30.0) -> None:
        """Wait for every acknowledgement and commit what they cover (rebalance, stop)."""
        self._producer.flush(timeout_s)
        self._settle()
        if self._queue:
            raise DeliveryFailed(f"{len(self._queue)} steps not acknowledged in {timeout_s} s")
        if self._acked:
            self._commit(asynchronous=False)

    def discard(self, settle_s: float = 0.0) -> None:
        """Forget what is not committed (partitions lost, or rewinding after a failure),
        after waiting up to ``settle_s`` for the records in flight to land or fail."""
        if settle_s:
            self._producer.flush(settle_s)
        self._queue.clear()
        self._step = Step()
        self._acked = None

    def output_p99_ms(self) -> float | None:
        """p99 of the recent steps' decision-to-acknowledgement times; None when none."""
        recent = sorted(self._ack_ms)
        self._ack_ms.clear()
        return recent[int(len(recent) * 0.99)] if len(recent) >= 20 else None

    def close(self) -> None:
        self._replier.shutdown(wait=True)

    def _settle(self) -> None:
        self._producer.poll(0)
        queue = self._queue
        while queue and queue[0].pending <= 0:
            step = queue.popleft()
            if step.error is not None:
                raise DeliveryFailed(f"a result was not written: {step.error}")
            if step.offsets:
                self._acked = step.offsets
            if step.replies:
                self._replier.submit(self._deliver, step.replies)
            if step.started:
                ack_ms = (time.perf_counter() - step.started) * 1000.0
                ACK_MS.observe(ack_ms)
                self._ack_ms.append(ack_ms)

    def _commit(self, asynchronous: bool) -> None:
        offsets = [TopicPartition(*position) for position in self._acked or ()]
        self._acked = None
        self._commit_at = time.monotonic() + self._commit_interval_s
        try:
            if asynchronous:
                self._consumer.commit(offsets=offsets, asynchronous=True)
            else:
                self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:  # harmless: the next commit covers these offsets
            log.warning("offset commit failed: %s", exc)
