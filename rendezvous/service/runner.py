"""The Kafka loop of ``rendezvous serve``: exactly one result per request, in time.

How "exactly one" holds across kill -9, restarts and rebalances:

* one consumer group reads ``input`` and ``scores`` with the ``range``
  assignor, which gives one member the same partition numbers of both
  co-partitioned topics;
* by default (``dedup``) results, decisions and dead letters are produced the
  moment they are decided by the idempotent producer (:mod:`.publisher`), and
  input offsets are committed only once every result before them is
  acknowledged; with ``--exactly-once transactions`` they commit in a Kafka
  transaction with the consumed offsets instead (:mod:`.committer`: zombie
  fencing, at the price of a commit round trip on every result);
* an input partition is committed only up to its lowest *unanswered* request,
  so a restart re-reads every request still waiting, and
* on assignment, the ids already answered on the same-numbered ``scored``
  partition are read back (:mod:`.recovery`) and never answered again.

In time: a request is decided by its deadline less a *delivery margin*, the
time a result takes to reach a reader, measured on this process's own output
path (produce to acknowledgement, p99 over the last results) and bounded by
``margin_min_ms``/``margin_max_ms``. Workers shed by the same rule.

Scores are committed as consumed: a request re-read after a crash is past its
deadline anyway and is decided at once with what has arrived again.

A stable ``--instance-id`` is the static group membership (it takes its
partitions back without waiting for the session timeout) and, with
transactions, the transactional id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    Message,
    Producer,
    TopicPartition,
)
from prometheus_client import Counter, Gauge, Histogram

from rendezvous.core import Outcome, PolicyError
from rendezvous.messages import (
    DEADLETTER_REASON_HEADER,
    MAX_ID_LENGTH,
    Policy,
    Undecodable,
    decode_score,
    encode,
)
from rendezvous.metrics import BATCH_BUCKETS, LagProbe, serve_metrics
from rendezvous.process import watch_gc
from rendezvous.readiness import announce_ready
from rendezvous.service.committer import Batch, CommitFailed, Committer, Record
from rendezvous.service.control import PolicyWatcher
from rendezvous.service.margin import DeliveryMargin
from rendezvous.service.partition import PartitionState
from rendezvous.service.publisher import DeliveryFailed, Publisher
from rendezvous.service.recovery import answered_ids
from rendezvous.service.replies import Replies
from rendezvous.settings import Settings
from rendezvous.transport.bad_records import (
    BadRecords,
    offset_of,
    partition_of,
    topic_of,
    where,
)
from rendezvous.transport.clients import Stopper, make_consumer, make_producer, poll_batch

log = logging.getLogger(__name__)

DECISIONS = Counter("rendezvous_serve_results", "Results emitted", ["status"])
LATE = Gauge("rendezvous_serve_late_answers", "Answers that came after their decision")
PENDING = Gauge("rendezvous_serve_pending", "Requests waiting for a decision")
ORPHANS = Gauge("rendezvous_serve_orphans", "Answers held for requests not seen yet (at most "
                "the core's max_orphans per partition, each for orphan_ttl_ms)")
ORPHANS_DISCARDED = Gauge("rendezvous_serve_orphans_discarded",
                          "Orphan answers dropped (expired, or over capacity)")
SLACK_MS = Histogram("rendezvous_serve_deadline_slack_ms",
                     "Decision time minus deadline, for requests decided at the deadline",
                     buckets=(0.1, 0.5, 1, 2, 5, 10, 20, 50, 100, 1000))
RECORDS = Counter("rendezvous_serve_records", "Records consumed", ["topic"])
LAG = Gauge("rendezvous_serve_lag", "Input and score records not consumed yet, when sampled")
BATCH_SECONDS = Histogram("rendezvous_serve_batch_seconds",
                          "Time of one loop step from its poll's return (decide, produce)",
                          buckets=BATCH_BUCKETS)
POLL_OVERSHOOT_MS = Histogram("rendezvous_serve_poll_overshoot_ms",
                              "How much longer a poll took than asked (the process was not "
                              "running: CPU starved, or a pause)",
                              buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500))
PAUSES = Counter("rendezvous_serve_pauses", "Times the process found it had been paused")
PAUSED_S = 3.0
"""A poll this much longer than asked means the process was stopped, not busy: another
instance may have answered its requests meanwhile (session timeout: 10 s)."""
MARGIN_MS = Gauge("rendezvous_serve_delivery_margin_ms",
                  "How long before its deadline a request is decided (measured output path)")


def clock_ms() -> float:
    return time.time() * 1000.0


class Service:
    """The rendezvous service of one process (``run`` loops until stopped)."""

    def __init__(self, settings: Settings, instance_id: str, *, commit_interval_ms: float = 5.0,
                 max_batch: int = 1000, max_wait_ms: float = 2.0,
                 feature_names: list[str] | None = None, exactly_once: str = "dedup",
                 margin_min_ms: float = 2.0, margin_max_ms: float = 10.0,
                 clock: Callable[[], float] = clock_ms) -> None:
        self.settings = settings
        self.clock = clock
        self.commit_interval_ms = commit_interval_ms
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.feature_names = feature_names
        self.topics = {settings.topic("input"): "input", settings.topic("scores"): "scores"}
        group = settings.group("rendezvous")
        self.consumer: Consumer = make_consumer(settings, group, **{
            "partition.assignment.strategy": "range",
            "group.instance.id": f"{group}-{instance_id}",
            "isolation.level": "read_committed",
        })
        if exactly_once not in ("transactions", "dedup"):
            raise ValueError(f"exactly_once must be dedup or transactions, not {exactly_once!r}")
        self.transactional = exactly_once == "transactions"
        self.producer: Producer = make_producer(settings, **({
            "transactional.id": f"{group}-{instance_id}",
            "transaction.timeout.ms": 10000,
            "linger.ms": 0,
            # The coordinator answers CONCURRENT_TRANSACTIONS while the previous
            # commit's markers are written; librdkafka's default 100 ms retry
            # backoff then made a commit ~100 ms, 2 ms made it ~20 (measured).
            "retry.backoff.ms": 2,
            "retry.backoff.max.ms": 20,
        } if self.transactional else {}))
        # With transactions every result waits for a commit: keep the widest margin.
        self.margin = DeliveryMargin(margin_max_ms if self.transactional else margin_min_ms,
                                     margin_max_ms)
        self.watcher = PolicyWatcher(settings)
        self.policy = self.watcher.read_current() or Policy(
            deadline_ms=settings.default_deadline_ms)
        self.replies = Replies(settings.redis_client())
        self.partitions: dict[int, PartitionState] = {}
        self.batch = Batch()
        self.dirty = False  # consumed or decided something since the last handoff
        self.last_handoff = 0.0
        self.committer: Committer | None = None
        self.publisher: Publisher | None = None
        self.stopper = Stopper()
        self.bad_records = BadRecords("serve")
        self.metrics_port: int | None = None
        # Plain ints on the hot path; Prometheus is updated once per batch.
        self.consumed = {"input": 0, "scores": 0}
        self.decided = {s: DECISIONS.labels(s) for s in ("ok", "fallback", "timeout", "rejected")}
        self.metrics_due = 0.0
        self.rebalanced = False  # a rebalance callback ran during the current poll
        # A commit stuck this long will not finish: after a broker restart a transaction
        # call was seen blocking for minutes past its own timeout (librdkafka 2.16).
        # Exiting lets a restart recover from the committed state.
        self.stuck_commit_s = settings.serve.stuck_commit_s
        self.lag = LagProbe(self.consumer, LAG)

    # -- lifecycle ---------------------------------------------------------

    def run(self) -> None:
        self.metrics_port = serve_metrics(self.settings)
        watch_gc()
        if self.transactional:
            # Aborts whatever a dead predecessor with this transactional id left open.
            self.producer.init_transactions(30)
            self.committer = Committer(self.producer, self.replies.deliver)
        else:
            self.publisher = Publisher(self.consumer, self.producer, self.replies.deliver)
        self.consumer.subscribe(list(self.topics), on_assign=self._on_assign,
                                on_revoke=self._on_revoke, on_lost=self._on_lost)
        log.info("serving with policy %s (%s)", self.policy,
                 "transactions" if self.transactional else "dedup")
        try:
            while not self.stopper.stopped:
                self._step()
        except CommitFailed:
            # Nothing more can be committed: no drain, no consumer close (its revoke
            # callback would wait on the hung commit again); a restart recovers.
            log.error("exiting without draining: a commit failed or hung")
            raise
        self._commit()
        if self.committer is not None:
            self.committer.close()
        if self.publisher is not None:
            self.publisher.close()
        self.consumer.close()
        self.watcher.close()
        log.info("stopped")

    def _step(self) -> None:
        wait = self.max_wait_s
        next_deadline = self._next_deadline()
        if next_deadline is not None:
            wait = max(0.0, min(wait, (next_deadline - self.clock()) / 1000.0))
        polled = time.perf_counter()
        self.rebalanced = False
        records = poll_batch(self.consumer, self.max_batch, wait)
        started = time.perf_counter()
        overshoot_s = max(0.0, started - polled - wait)
        POLL_OVERSHOOT_MS.observe(overshoot_s * 1000.0)
        # A rebalance callback inside the poll (recovery reads scored) also makes it long;
        # with transactions, the group metadata in each commit fences a zombie instead.
        if overshoot_s > PAUSED_S and not self.rebalanced and self.publisher is not None:
            self._after_pause(overshoot_s)
            return
        for record in records:
            self._dispatch(record)
        for state in self.partitions.values():
            before = self.clock()
            outcomes = state.core.tick()
            for outcome in outcomes:
                SLACK_MS.observe(max(0.0, before - outcome.decision.deadline_ms))
            self._emit(state, outcomes)
        policy = self.watcher.poll()
        if policy is not None:
            self._apply_policy(policy)
        if self.publisher is not None:
            self._publish_step()
        else:
            self._handoff()
        self.lag.maybe_update()
        if records:
            BATCH_SECONDS.observe(time.perf_counter() - started)

    def _publish_step(self) -> None:
        """``dedup``: results are already produced; close the step and commit behind acks."""
        publisher = self.publisher
        assert publisher is not None
        try:
            publisher.end_step(self._offsets() if self.dirty else [])
        except DeliveryFailed as exc:
            log.warning("%s; deciding again from the committed offsets", exc)
            self._rewind()  # forgets the publisher's uncommitted steps
            return
        self.dirty = False
        now = self.clock()
        if now >= self.metrics_due:
            self.metrics_due = now + 1000.0
            self._update_metrics()
            self.margin.update(publisher.ack_ms_p99())

    def _handoff(self) -> None:
        """``transactions``: hand the decisions since the last handoff to the committer."""
        committer = self.committer
        assert committer is not None
        committer.raise_if_failed()
        if committer.take_aborted():
            self._rewind()
        elif committer.busy_for() > self.stuck_commit_s:
            raise CommitFailed(f"a commit has not finished in {self.stuck_commit_s:.0f} s; exiting "
                               "so a restart recovers from the committed state")
        now = self.clock()
        if self.dirty and committer.idle and now - self.last_handoff >= self.commit_interval_ms:
            committer.submit(self._take_batch())
            self.last_handoff = now

    def _after_pause(self, paused_s: float) -> None:
        """This process was stopped (SIGSTOP, a VM pause, swap) long enough for another
        instance to have taken its partitions and answered their requests. Decide nothing
        from memory: read back what is answered on ``scored`` and re-read the inputs from
        the committed offsets first (:meth:`_rewind`); a rebalance, if one happened,
        follows on the next poll."""
        PAUSES.inc()
        log.warning("this process was paused for %.1f s; rebuilding from Kafka before "
                    "deciding anything", paused_s)
        if self.partitions:  # else they were revoked or lost already: nothing to rebuild
            self._rewind()

    def _next_deadline(self) -> float | None:
        deadlines = [d for s in self.partitions.values()
                     if (d := s.core.next_deadline()) is not None]
        return min(deadlines) if deadlines else None

    # -- records -----------------------------------------------------------

    def _dispatch(self, record: Message) -> None:
        kind = self.topics[topic_of(record)]
        self.consumed[kind] += 1
        state = self.partitions.get(partition_of(record))
        if state is None:  # a record fetched just before its partition was revoked
            return
        self.dirty = True
        try:
            if kind == "input":
                self._on_input(state, record)
            else:
                self._on_score(state, record)
        except Exception as exc:  # noqa: BLE001 - one record must never stop the service
            # A bug, not bad bytes (decoders never raise): keep its traceback, answer or
            # skip this one record, and go on, so the same record cannot crash every restart.
            log.exception("failed on %s", where(record))
            if kind == "input":
                self._reject(state, record, f"internal error on this record: {exc!r}"[:300])
            else:
                self.bad_records.skip("scores", where(record), repr(exc))
                state.scores_next = offset_of(record) + 1

    def _on_input(self, state: PartitionState, record: Message) -> None:
        outcomes, invalid = state.on_input(record)
        if invalid is not None and outcomes:
            self._dead_letter(record, invalid.reason)
        self._emit(state, outcomes)

    def _on_score(self, state: PartitionState, record: Message) -> None:
        try:
            score = decode_score(record.value())
        except Undecodable as exc:
            self.bad_records.skip("scores", where(record), str(exc))
            state.scores_next = offset_of(record) + 1
            return
        self._emit(state, state.on_score(record, score))

    def _reject(self, state: PartitionState, record: Message, reason: str) -> None:
        outcomes = state.reject(record, reason)
        if outcomes:
            self._dead_letter(record, reason)
        self._emit(state, outcomes)

    def _emit(self, state: PartitionState, outcomes: list[Outcome]) -> None:
        if not outcomes:
            return
        self.dirty = True
        p = state.partition
        scored, decisions = self.settings.topic("scored"), self.settings.topic("decisions")
        out = self._out
        for outcome in outcomes:
            key = outcome.request_id.encode()
            out((scored, encode(outcome.scored), key, p, None))
            out((decisions, encode(outcome.decision), key, p, None))
            self.decided[outcome.scored.status].inc()
        for reply_to, outcome in state.settle(outcomes):
            if self.publisher is not None:
                self.publisher.reply(reply_to, outcome.scored)
            else:
                self.batch.replies.append((reply_to, outcome.scored))

    def _out(self, record: Record) -> None:
        """Publish ``record`` now (dedup) or with the next transaction."""
        if self.publisher is not None:
            self.publisher.produce(record)
        else:
            self.batch.records.append(record)

    def _dead_letter(self, record: Message, reason: str) -> None:
        value, key = record.value() or b"", record.key() or b""
        headers: list[tuple[str, str | bytes | None]] = [
            (DEADLETTER_REASON_HEADER, reason.encode()),
            ("rendezvous.source", where(record).encode())]
        limit = self.settings.serve.deadletter_max_bytes
        if len(value) + len(key) > limit:
            # The raw archive keeps every byte; a dead letter must fit any topic's limit.
            headers.append(("rendezvous.truncated", str(len(value)).encode()))
            value, key = value[:limit // 2], key[:MAX_ID_LENGTH]
        self._out((self.settings.topic("deadletter"), value, key, 0, headers))

    # -- transactions ------------------------------------------------------

    def _take_batch(self) -> Batch:
        """The decisions since the last handoff, with the offsets they account for."""
        batch, self.batch = self.batch, Batch()
        batch.offsets = self._offsets()
        batch.group_metadata = self.consumer.consumer_group_metadata()
        self.dirty = False
        self._update_metrics()
        return batch

    def _update_metrics(self) -> None:
        for kind, count in self.consumed.items():
            RECORDS.labels(kind).inc(count)
            self.consumed[kind] = 0
        PENDING.set(sum(s.core.pending() for s in self.partitions.values()))
        stats = [s.core.stats() for s in self.partitions.values()]
        LATE.set(sum(st.late for st in stats))
        ORPHANS.set(sum(st.orphans for st in stats))
        ORPHANS_DISCARDED.set(sum(st.orphans_expired + st.orphans_dropped for st in stats))
        MARGIN_MS.set(self.margin.ms)

    def _commit(self) -> None:
        """Commit everything decided so far and wait until it is done (rebalance, stop)."""
        if self.publisher is not None:
            try:
                self.publisher.end_step(self._offsets())
                self.publisher.drain(self.stuck_commit_s)
            except DeliveryFailed as exc:  # the next owner re-reads what was not committed
                log.warning("%s; the uncommitted requests are decided again", exc)
                self.publisher.discard()
        elif self.committer is not None:
            self.committer.flush(self._take_batch() if self.dirty else None, self.stuck_commit_s)

    def _offsets(self) -> list[TopicPartition]:
        offsets = []
        for p, state in self.partitions.items():
            committable = state.inputs.committable()
            if committable is not None:
                offsets.append(TopicPartition(self.settings.topic("input"), p, committable))
            if state.scores_next is not None:
                offsets.append(TopicPartition(self.settings.topic("scores"), p,
                                              state.scores_next))
        return offsets

    # -- rebalances and policy ----------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.rebalanced = True
        self._rebuild(consumer.committed(partitions, timeout=30))
        announce_ready("serve", f"partitions={sorted(self.partitions)} metrics={self.metrics_port}")

    def _rebuild(self, committed: list[TopicPartition]) -> None:
        """Fresh partition states from what Kafka holds: the answered ids after the
        committed input offsets."""
        inputs = {tp.partition: tp.offset for tp in committed
                  if self.topics[tp.topic] == "input"}
        for p, done in answered_ids(self.settings, inputs).items():
            state = PartitionState(p, self.policy, self.clock, self.feature_names, self.margin)
            state.core.mark_decided(done)
            self.partitions[p] = state
            log.info("partition %d: %d answered ids restored", p, len(done))

    def _rewind(self) -> None:
        """After an aborted transaction: forget what was decided since the last commit,
        go back to the committed offsets, and decide those requests again."""
        self.batch, self.dirty = Batch(), False
        if self.publisher is not None:
            # Results still in flight land (or fail) first, so the read-back below sees them.
            self.producer.flush(self.stuck_commit_s)
            self.publisher.discard()
        committed = self.consumer.committed(self.consumer.assignment(), timeout=30)
        self._rebuild(committed)
        for tp in committed:
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self.consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
        log.warning("rewound %d partitions to their committed offsets", len(committed))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.rebalanced = True
        # Commit what was decided, so the next owner starts where this one stops.
        self._commit()
        for tp in partitions:
            if self.topics[tp.topic] == "input" and tp.partition in self.partitions:
                del self.partitions[tp.partition]
                log.info("revoked partition %d", tp.partition)

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.rebalanced = True
        # Lost (not revoked): our transaction can no longer commit these offsets.
        for tp in partitions:
            self.partitions.pop(tp.partition, None)
        self.batch, self.dirty = Batch(), False
        if self.publisher is not None:
            self.publisher.discard()

    def _apply_policy(self, policy: Policy) -> None:
        try:
            for state in self.partitions.values():
                state.core.set_policy(policy)
        except PolicyError as exc:
            log.error("ignoring an invalid policy from the control topic: %s", exc)
            return
        self.policy = policy
        log.warning("policy changed live: prefer=%s deadline_ms=%s rules=%s",
                    policy.prefer, policy.deadline_ms, policy.rules)


def run(settings: Settings, instance_id: str = "0", **options: object) -> None:
    """Run ``rendezvous serve`` until SIGTERM/SIGINT."""
    Service(settings, instance_id, **options).run()  # type: ignore[arg-type]
