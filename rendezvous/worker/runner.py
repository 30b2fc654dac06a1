"""The worker's Kafka loop: poll a micro-batch, decode it, score it in one call, produce, commit.

Per batch: one decode pass (:mod:`rendezvous.worker.batch`), one
``Model.predict`` call, one produce loop writing a :class:`~rendezvous.messages.Score`
per valid input to the ``scores`` topic, on **the input record's partition
number** (co-partitioning; key = request id, but the partition is explicit so
no client's key hashing matters).

Deadlines propagate: a request whose deadline passed before it arrived is
*shed* — skipped and counted, with no ``expired`` record — because the
rendezvous has already answered it (fallback or timeout); writing anything for
it only adds load when the worker is already behind. Invalid input is counted
and skipped: the rendezvous answers it ``rejected``.

Offsets (at-least-once): a batch's input offsets are committed only once the
broker acknowledged every score of that batch (idempotent producer, acks=all).
Delivery is pipelined: the next batch is polled and scored while the previous
one's acknowledgements come in, and acknowledged batches are committed in order,
every ``COMMIT_INTERVAL_S`` (:class:`Pipeline`). Flushing after every batch
instead measured 2-5x slower (``bench/bench_worker.py``): each batch then waits
a broker round trip. A failed delivery stops the worker with nothing of that
batch committed, so a restart scores it again. SIGTERM/SIGINT finish the
in-flight batch, wait for its acknowledgements, commit, and return.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from prometheus_client import Counter, Gauge, Histogram

from rendezvous.messages import Score, encode
from rendezvous.metrics import serve_metrics
from rendezvous.model import Model, ModelError, load_model, resolve_model
from rendezvous.readiness import announce_ready
from rendezvous.settings import Settings
from rendezvous.transport import clients as kafka
from rendezvous.transport.clients import Stopper, flush_or_raise
from rendezvous.worker.batch import RowBuilder
from rendezvous.worker.errors import DeliveryFailed, WorkerError

log = logging.getLogger(__name__)

RECORDS = Counter("rendezvous_worker_records", "Input records consumed.", ["model"])
SCORED = Counter("rendezvous_worker_scored", "Scores produced with status ok.", ["model"])
INVALID = Counter("rendezvous_worker_invalid", "Input records that failed validation.", ["model"])
SHED = Counter("rendezvous_worker_shed", "Inputs skipped: deadline passed on arrival.", ["model"])
ERRORS = Counter("rendezvous_worker_errors", "Scores produced with status error.", ["model"])
BATCHES = Counter("rendezvous_worker_batches", "Micro-batches processed.", ["model"])
BATCH_SECONDS = Histogram(
    "rendezvous_worker_batch_seconds", "Time from poll to the batch's last produce call.",
    ["model"], buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
)
LAG = Gauge("rendezvous_worker_lag", "Input records not consumed yet, when sampled.", ["model"])

MAX_IN_FLIGHT = 64
"""Batches awaiting acknowledgement before the loop blocks on them (bounds redelivery)."""
COMMIT_INTERVAL_S = 0.05
LAG_INTERVAL_S = 1.0

Handle = Callable[[list[Message], Callable[..., None]], int]
"""Processes one batch: produces its outputs with the given delivery callback, returns how many."""


def now_ms() -> float:
    return time.time() * 1000.0


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
    commit per batch of 1 would halve throughput); a crash re-scores at most
    that much more.
    """

    def __init__(self, consumer: Consumer, producer: Producer,
                 max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.consumer, self.producer, self.max_in_flight = consumer, producer, max_in_flight
        self.queue: deque[Tracked] = deque()
        self.acked: dict[tuple[str, int], int] = {}
        self.commit_at = 0.0
        self.failed = False

    def begin(self, records: list[Message]) -> Tracked:
        tracked = Tracked(kafka.next_offsets(records))
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
                raise DeliveryFailed(
                    f"the broker refused a batch of scores ({tracked.error}); its input offsets "
                    "were not committed, so a restarted worker scores it again (if it repeats, "
                    "check the broker and `rendezvous topics list`: input and scores need the "
                    "same partition count)"
                )
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

    Shared by the worker and the bare-relay benchmark, so both pay the same
    Kafka costs. ``on_poll(records, seconds)`` observes every poll (``records``
    may be empty); ``max_in_flight=0`` flushes after every batch (no pipelining).
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
        log.info("revoked %s; committing what was scored", _describe(partitions))
        pipeline.drain()

    def on_lost(_c: Consumer, partitions: list[TopicPartition]) -> None:
        log.warning("lost %s; uncommitted batches will be scored again", _describe(partitions))
        pipeline.drop()

    consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    try:
        while not stopper.stopped:
            records = kafka.poll_batch(consumer, max_batch, max_wait_s)
            started = time.perf_counter()
            if records:
                tracked = pipeline.begin(records)
                tracked.pending += handle(records, tracked.delivered)
            if on_poll is not None:
                on_poll(records, time.perf_counter() - started)
            pipeline.settle()
        pipeline.drain()
    except BaseException:
        pipeline.failed = True  # close() runs on_revoke: it must commit nothing more
        raise
    finally:
        consumer.close()


def _describe(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"


class Scorer:
    """The worker's batch handler: decode, one predict call, one produce loop."""

    def __init__(self, model: Model, producer: Producer, topic: str,
                 default_deadline_ms: float, delay_ms: float = 0.0) -> None:
        self.model, self.producer, self.topic = model, producer, topic
        self.builder = RowBuilder(model.feature_names, default_deadline_ms)
        self.delay_s = delay_ms / 1000.0
        labels = {"model": model.name}
        self.records, self.scored = RECORDS.labels(**labels), SCORED.labels(**labels)
        self.invalid, self.shed = INVALID.labels(**labels), SHED.labels(**labels)
        self.errors, self.batches = ERRORS.labels(**labels), BATCHES.labels(**labels)

    def __call__(self, records: list[Message], on_delivery: Callable[..., None]) -> int:
        received = now_ms()
        batch = self.builder.prepare(records, received)
        self.records.inc(len(records))
        self.batches.inc()
        if batch.invalid:
            self.invalid.inc(len(batch.invalid))
            log.debug("%d invalid inputs, first: %s", len(batch.invalid), batch.invalid[0])
        if batch.shed:
            self.shed.inc(batch.shed)
        if not batch.ids:
            return 0
        name, version = self.model.name, self.model.version
        try:
            scores, labels = self.model.predict(batch.rows)
        except Exception as exc:  # ORT raises untyped errors; a failed batch is data, not a crash
            log.exception("%s/%s failed on a batch of %d", name, version, len(batch.ids))
            return self._produce_errors(batch.ids, batch.partitions, received,
                                        f"model failed: {str(exc)[:200]}", on_delivery)
        if self.delay_s:
            time.sleep(self.delay_s)
        scored = now_ms()
        producer, topic, bad = self.producer, self.topic, 0
        for rid, partition, score, label in zip(batch.ids, batch.partitions, scores.tolist(),
                                                labels.tolist(), strict=True):
            if math.isfinite(score):
                message = Score(rid, name, version, "ok", score, label, received, scored)
            else:  # a bad output counts as no answer; say so at once rather than at the deadline
                message = Score(rid, name, version, "error", received_ms=received,
                                scored_ms=scored, reason="model returned a non-finite score")
                bad += 1
            _produce(producer, topic, encode(message), rid, partition, on_delivery)
        self.scored.inc(len(batch.ids) - bad)
        if bad:
            self.errors.inc(bad)
        return len(batch.ids)

    def _produce_errors(self, ids: list[str], partitions: list[int], received: float,
                        reason: str, on_delivery: Callable[..., None]) -> int:
        scored = now_ms()
        for rid, partition in zip(ids, partitions, strict=True):
            message = Score(rid, self.model.name, self.model.version, "error",
                            received_ms=received, scored_ms=scored, reason=reason)
            _produce(self.producer, self.topic, encode(message), rid, partition, on_delivery)
        self.errors.inc(len(ids))
        return len(ids)


def _produce(producer: Producer, topic: str, value: bytes, key: str, partition: int,
             on_delivery: Callable[..., None]) -> None:
    while True:
        try:
            producer.produce(topic, value, key, partition=partition, on_delivery=on_delivery)
            return
        except BufferError:  # local queue full: let deliveries drain, then retry
            producer.poll(0.05)


def load(settings: Settings, model_name: str, version: str | None = None) -> Model:
    """The verified model, or a :class:`WorkerError` saying what exists / what is wrong."""
    try:
        return load_model(resolve_model(settings.models_dir, model_name, version))
    except ModelError as exc:
        raise WorkerError(str(exc)) from exc


class LagProbe:
    """Consumer lag from cached watermarks (no broker round trip), at most once a second."""

    def __init__(self, consumer: Consumer, gauge: Gauge) -> None:
        self.consumer, self.gauge, self.next_at = consumer, gauge, 0.0

    def maybe_update(self) -> None:
        now = time.monotonic()
        if now < self.next_at:
            return
        self.next_at = now + LAG_INTERVAL_S
        total = 0
        for tp in self.consumer.position(self.consumer.assignment()):
            _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0 and tp.offset >= 0:
                total += max(0, high - tp.offset)
        self.gauge.set(total)


def run(settings: Settings, model_name: str, *, version: str | None = None,
        max_batch: int = 512, max_wait_ms: float = 2.0, delay_ms: float = 0.0,
        metrics_port: int | None = None, instance: str | None = None,
        stopper: Stopper | None = None) -> None:
    """Serve ``model_name`` until SIGTERM/SIGINT (or ``stopper``); returns after draining."""
    model = load(settings, model_name, version)
    if metrics_port is not None:
        settings = settings.model_copy(update={"metrics_port": metrics_port})
    port = serve_metrics(settings)
    stopper = stopper or Stopper()
    group = settings.group(f"worker-{model.name}")
    extra = {"group.instance.id": f"{group}-{instance}"} if instance else {}
    consumer = kafka.make_consumer(settings, group, **extra)
    producer = kafka.make_producer(settings)
    scorer = Scorer(model, producer, settings.topic("scores"), settings.default_deadline_ms,
                    delay_ms)
    batch_seconds = BATCH_SECONDS.labels(model=model.name)
    lag = LagProbe(consumer, LAG.labels(model=model.name))

    def ready() -> None:
        announce_ready("worker", f"model={model.name} version={model.version} "
                                 f"metrics={port if port is not None else 'off'}")

    def observe(records: list[Message], seconds: float) -> None:
        if records:
            batch_seconds.observe(seconds)
        lag.maybe_update()

    log.info("worker %s/%s on %s (group %s, batch <= %d, wait <= %g ms, delay %g ms)",
             model.name, model.version, settings.topic("input"), group, max_batch, max_wait_ms,
             delay_ms)
    consume_loop(consumer, producer, settings.topic("input"), scorer, max_batch=max_batch,
                 max_wait_s=max_wait_ms / 1000.0, stopper=stopper, on_first_assign=ready,
                 on_poll=observe)
    log.info("worker %s stopped after draining", model.name)
