"""``serve --exactly-once transactions``: results commit in Kafka transactions, on their own thread.

:class:`TransactionSink` is the Kafka :class:`~.ports.Sink` of this mode: the
decision loop hands a finished batch — records to produce, the consumed offsets
they account for, and the return addresses to notify — to this thread and goes
on deciding into the next batch; at most one batch is in flight.
Records and offsets commit in one transaction: nothing is visible to
read_committed readers before its offsets are committed, and a zombie instance
is fenced. A commit is several broker round trips (20-30 ms measured here),
which every result waits for; the default mode (:mod:`.publisher`) does not.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from prometheus_client import Histogram

from rendezvous.errors import RendezvousError
from rendezvous.messages import Scored
from rendezvous.service.ports import Offsets, OutRecord, Redo
from rendezvous.transport.clients import produce

log = logging.getLogger(__name__)

COMMIT_SECONDS = Histogram("rendezvous_serve_commit_seconds", "Transaction commit time",
                           buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1, 5))

@dataclass
class Batch:
    """What one transaction commits atomically."""

    records: list[OutRecord] = field(default_factory=list)
    offsets: Offsets = field(default_factory=list)
    group_metadata: object = None
    replies: list[tuple[str, Scored]] = field(default_factory=list)


class CommitFailed(RendezvousError, RuntimeError):
    """A transaction failed for good; the process must restart to recover from what Kafka holds."""


class _Aborted(Exception):
    """The transaction was aborted; what it held must be decided again."""


# How long a retriable error (broker away, coordinator moving) is retried: under the
# runner's 30 s limit on a commit (serve.stuck_commit_s), which would act first anyway.
RETRY_FOR_S = 25.0


class Committer:
    """Commits one :class:`Batch` at a time on a background thread."""

    def __init__(self, producer: Producer,
                 deliver: Callable[[list[tuple[str, Scored]]], None]) -> None:
        self._producer = producer
        self._deliver = deliver
        self._pending: Batch | None = None
        self._wake = threading.Condition()
        self._idle = threading.Event()
        self._idle.set()
        self._closed = False
        self._error: BaseException | None = None
        self._aborted = threading.Event()
        self._busy_since: float | None = None
        self._thread = threading.Thread(target=self._run, name="committer", daemon=True)
        self._thread.start()

    @property
    def idle(self) -> bool:
        """True when no batch is in flight (a new one may be submitted)."""
        return self._idle.is_set()

    def submit(self, batch: Batch) -> None:
        """Commit ``batch`` in the background; only when :attr:`idle`."""
        self.raise_if_failed()
        assert self.idle, "one batch in flight at a time"
        with self._wake:
            self._idle.clear()
            self._pending = batch
            self._wake.notify()

    def flush(self, batch: Batch | None = None, timeout_s: float = 30.0) -> None:
        """Wait for the batch in flight, commit ``batch`` too, and return when all is done.

        Raises :class:`CommitFailed` after ``timeout_s`` of waiting: this runs inside
        rebalance callbacks, where waiting forever on a hung commit would hang the process.
        """
        self._wait_idle(timeout_s)
        if batch is not None and (batch.records or batch.offsets):
            self.submit(batch)
            self._wait_idle(timeout_s)
        self.raise_if_failed()

    def _wait_idle(self, timeout_s: float) -> None:
        if not self._idle.wait(timeout_s):
            raise CommitFailed(f"a commit has not finished in {timeout_s:.0f} s; exiting so "
                               "a restart recovers from the committed state")

    def take_aborted(self) -> bool:
        """True (once) when a batch was aborted: its decisions never reached Kafka, and the
        caller must rebuild its state from what Kafka holds."""
        if self._aborted.is_set():
            self._aborted.clear()
            return True
        return False

    def busy_for(self) -> float:
        """Seconds the batch in flight has been committing (0 when idle)."""
        since = self._busy_since
        return 0.0 if since is None else time.monotonic() - since

    def raise_if_failed(self) -> None:
        if self._error is not None:
            raise CommitFailed(f"transaction failed ({self._error}); exiting so a restart "
                               "recovers from the committed state") from self._error

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._pending is None and not self._closed:
                    self._wake.wait()
                if self._pending is None:
                    return
                batch, self._pending = self._pending, None
            self._busy_since = time.monotonic()
            try:
                self._commit(batch)
            except _Aborted as exc:
                log.warning("transaction aborted (%s); its requests are decided again", exc)
                self._aborted.set()
            except BaseException as exc:  # noqa: BLE001 - reported to the loop
                log.error("transaction failed: %s", exc)
                self._error = exc
            finally:
                self._busy_since = None
                self._idle.set()

    def _produce(self, batch: Batch) -> None:
        for topic, value, key, partition, headers in batch.records:
            produce(self._producer, topic, value, key, partition=partition, headers=headers)

    def _commit(self, batch: Batch) -> None:
        started = time.perf_counter()
        self._commit_transaction(batch)
        COMMIT_SECONDS.observe(time.perf_counter() - started)
        self._deliver(batch.replies)

    def _commit_transaction(self, batch: Batch) -> None:
        producer = self._producer
        producer.begin_transaction()
        self._produce(batch)
        try:
            if batch.offsets:
                offsets = [TopicPartition(*position) for position in batch.offsets]
                _retrying(lambda: producer.send_offsets_to_transaction(
                    offsets, batch.group_metadata, 30))
            _retrying(lambda: producer.commit_transaction(30))
        except KafkaException as exc:
            if not exc.args[0].txn_requires_abort():
                raise
            producer.abort_transaction(60)
            raise _Aborted(exc.args[0].str()) from exc


def _retrying(call: Callable[[], None]) -> None:
    """``call`` again while it fails with a retriable error, for up to RETRY_FOR_S."""
    give_up = time.monotonic() + RETRY_FOR_S
    while True:
        try:
            call()
            return
        except KafkaException as exc:
            error = exc.args[0]
            if not error.retriable() or time.monotonic() > give_up:
                raise
            log.warning("transaction call failed, retrying: %s", error.str())
            time.sleep(0.1)


class TransactionSink:
    """Collects what the loop writes into a :class:`Batch`, handed to the :class:`Committer`
    every ``interval_ms`` when no commit is in flight."""

    fences_zombies = True

    def __init__(self, consumer: Consumer, producer: Producer,
                 deliver: Callable[[list[tuple[str, Scored]]], None],
                 interval_ms: float, stuck_s: float) -> None:
        # Aborts whatever a dead predecessor with this transactional id left open.
        producer.init_transactions(30)
        self._consumer = consumer
        self._committer = Committer(producer, deliver)
        self._interval_s, self._stuck_s = interval_ms / 1000.0, stuck_s
        self._batch = Batch()
        self._handed_at = 0.0

    def write(self, record: OutRecord) -> None:
        self._batch.records.append(record)

    def reply(self, reply_to: str, scored: Scored) -> None:
        self._batch.replies.append((reply_to, scored))

    def end_step(self, offsets: Callable[[], Offsets] | None) -> bool:
        committer = self._committer
        committer.raise_if_failed()
        if committer.take_aborted():
            raise Redo("a transaction was aborted")
        if committer.busy_for() > self._stuck_s:
            raise CommitFailed(f"a commit has not finished in {self._stuck_s:.0f} s; exiting "
                               "so a restart recovers from the committed state")
        now = time.monotonic()
        if offsets is None or not committer.idle or now - self._handed_at < self._interval_s:
            return False
        committer.submit(self._take(offsets()))
        self._handed_at = now
        return True

    def commit_all(self, offsets: Offsets) -> None:
        self._committer.flush(self._take(offsets), self._stuck_s)

    def discard(self, settle_s: float = 0.0) -> None:
        self._batch = Batch()

    def output_p99_ms(self) -> float | None:
        return None  # every result waits for a commit: the margin stays at its widest

    def close(self) -> None:
        self._committer.close()

    def _take(self, offsets: Offsets) -> Batch:
        """The records since the last handoff, with the offsets they account for."""
        batch, self._batch = self._batch, Batch()
        batch.offsets = offsets
        batch.group_metadata = self._consumer.consumer_group_metadata()
        return batch
