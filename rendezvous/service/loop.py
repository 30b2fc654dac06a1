"""serve's loop: source -> decode -> core -> encode -> sink, one step per poll.

Each step polls the :class:`~.ports.Source` (waiting at most until the next
deadline), turns every record into a request or an answer (:mod:`.decode`, the one
place serve decodes), hands it to its partition's core
(:class:`~.partition.PartitionState`), decides what is due, encodes each outcome
and writes it to the :class:`~.ports.Sink` as it is decided, and ends the step with
the offsets everything written accounts for. Nothing here names Kafka: the runner
wires Kafka in (:mod:`.runner`), the tests memory (:mod:`.memory`).

Late answers (a model's answer after its request was decided) are never
answered again; they are counted per model and reported on the partition's next
decision (``Decision.late``), so serve's counter and the monitor's agree.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

import msgspec
from prometheus_client import Counter, Gauge, Histogram

from rendezvous.core import LiveLatency, Outcome, PolicyError, Scales
from rendezvous.messages import (
    DEADLETTER_REASON_HEADER,
    MAX_ID_LENGTH,
    MAX_SCORE_BYTES,
    PROVISIONAL_HEADER,
    DeadlineBounds,
    Decision,
    Policy,
    encode,
)
from rendezvous.metrics import BATCH_BUCKETS
from rendezvous.service.decode import Decoder, Request
from rendezvous.service.margin import DeliveryMargin
from rendezvous.service.partition import PartitionState
from rendezvous.service.ports import Headers, InRecord, Offsets, Position, Redo, Sink, Source
from rendezvous.settings import Settings

if TYPE_CHECKING:  # the model package loads ONNX Runtime: serve needs only the type
    from rendezvous.model.deployment import Deployment

log = logging.getLogger(__name__)

DECISIONS = Counter("rendezvous_serve_results", "Results emitted", ["status"])
LATE = Counter("rendezvous_serve_late_answers",
               "Answers that came after their request was decided (counted, never re-answered)",
               ["model"])
PENDING = Gauge("rendezvous_serve_pending", "Requests waiting for a decision")
ORPHANS = Gauge("rendezvous_serve_orphans", "Answers held for requests not seen yet (at most "
                "the core's max_orphans per partition, each for orphan_ttl_ms)")
ORPHANS_DISCARDED = Gauge("rendezvous_serve_orphans_discarded",
                          "Orphan answers dropped (expired, or over capacity)")
SLACK_MS = Histogram("rendezvous_serve_deadline_slack_ms",
                     "Decision time minus deadline, for requests decided at the deadline",
                     buckets=(0.1, 0.5, 1, 2, 5, 10, 20, 50, 100, 1000))
RECORDS = Counter("rendezvous_serve_records", "Records consumed", ["topic"])
BATCH_SECONDS = Histogram("rendezvous_serve_batch_seconds",
                          "Time of one loop step from its poll's return (decide, produce)",
                          buckets=BATCH_BUCKETS)
POLL_OVERSHOOT_MS = Histogram("rendezvous_serve_poll_overshoot_ms",
                              "How much longer a poll took than asked (the process was not "
                              "running: CPU starved, or a pause)",
                              buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500))
POLL_RESOLUTION_MS = 1.0
"""librdkafka waits in whole milliseconds and truncates: a poll for less than 1 ms does
not wait at all. So a deadline closer than this is decided now (early by under 1 ms):
polling until it came made the loop spin, one empty step after another (measured at
2,000 requests/s: 1,900-19,200 steps a second, against ~440 with this rule and a 2 ms
longest poll)."""
PAUSES = Counter("rendezvous_serve_pauses", "Times the process found it had been paused")
PAUSED_S = 3.0
"""A poll this much longer than asked means the process was stopped, not busy: another
instance may have answered its requests meanwhile (session timeout: 10 s)."""
PROVISIONAL = Counter("rendezvous_serve_provisional_results",
                      "Provisional results of progressive requests (not in results)")
MODEL_P99_MS = Gauge("rendezvous_serve_model_latency_p99_ms",
                     "Each model's live p99 latency, request ts to its answer at serve "
                     "(inf: over 1 % missed their deadline)", ["model"])
MARGIN_MS = Gauge("rendezvous_serve_delivery_margin_ms",
                  "How long before its deadline a request is decided (measured output path)")


def clock_ms() -> float:
    return time.time() * 1000.0


class ServeLoop:
    """The rendezvous of the partitions a source assigns, writing to one sink.

    Call :meth:`start`, then :meth:`step` until stopped, then :meth:`close`.
    """

    def __init__(self, settings: Settings, source: Source, sink: Sink, *,
                 deployment: Deployment | None = None, scales: Scales | None = None,
                 clock: Callable[[], float] = clock_ms) -> None:
        opts = settings.serve
        self.scales = scales  # each model version's quantile function: fallbacks' scale
        self.latency = LiveLatency()  # every partition's answers: the policy's prefer_in_time
        self.settings, self.source, self.sink, self.clock = settings, source, sink, clock
        self.max_batch = opts.max_batch
        self.max_wait_s = opts.max_wait_ms / 1000.0
        self.stuck_s = opts.stuck_commit_s
        self.input_topic, self.scores_topic = settings.topic("input"), settings.topic("scores")
        self.scored_topic, self.decisions_topic = (settings.topic("scored"),
                                                   settings.topic("decisions"))
        self.decode = Decoder(
            self.input_topic,
            schema=deployment.schema if deployment is not None else None,
            reply_prefix=settings.topic_prefix,
            max_score_bytes=(deployment.max_score_bytes if deployment is not None
                             else MAX_SCORE_BYTES),
            score_keys={m: k.get_secret_value() for m, k in opts.score_keys.items()})
        # With transactions every result waits for a commit: keep the widest margin.
        self.margin = DeliveryMargin(
            opts.margin_max_ms if opts.exactly_once == "transactions" else opts.margin_min_ms,
            opts.margin_max_ms, reader_ms=settings.kafka.fetch_wait_max_ms)
        self.policy = Policy(deadline_ms=settings.default_deadline_ms)
        self.deadlines = DeadlineBounds(opts.min_deadline_ms, opts.max_deadline_ms)
        self.partitions: dict[int, PartitionState] = {}
        self.dirty = False  # consumed or decided something since the sink took the offsets
        self.rebalanced = False  # the source reported a partition change during this poll
        # Plain ints on the hot path; Prometheus is updated once a second.
        self.consumed = {"input": 0, "scores": 0}
        self.late: dict[str, int] = {}
        self.decided = {s: DECISIONS.labels(s) for s in ("ok", "fallback", "timeout", "rejected")}
        self.metrics_due = 0.0
        self.write = sink.write

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Read the policy in force and start receiving."""
        self.policy = self.source.current_policy() or self.policy
        self.source.open(self)
        log.info("serving with policy %s (%s)", self.policy, self.settings.serve.exactly_once)

    def close(self) -> None:
        """Commit everything decided so far, then close the source, then the sink: closing
        the source revokes its partitions, and a revoke commits through the sink (a closed
        transaction sink would wait for its stopped thread until the stuck-commit limit)."""
        self._commit()
        self.source.close()
        self.sink.close()

    def step(self) -> None:
        """Poll once, decide what the records and the clock settle, end the step."""
        wait = self.max_wait_s
        next_deadline = self._next_deadline()
        if next_deadline is not None:
            whole_ms = (next_deadline - self.clock()) // POLL_RESOLUTION_MS * POLL_RESOLUTION_MS
            wait = max(0.0, min(wait, whole_ms / 1000.0))
        polled = time.perf_counter()
        self.rebalanced = False
        records = self.source.poll(self.max_batch, wait)
        started = time.perf_counter()
        overshoot_s = max(0.0, started - polled - wait)
        POLL_OVERSHOOT_MS.observe(overshoot_s * 1000.0)
        # A rebalance inside the poll (recovery reads scored) also makes it long; with
        # transactions, the group metadata in each commit fences a zombie instead.
        if overshoot_s > PAUSED_S and not self.rebalanced and not self.sink.fences_zombies:
            self._after_pause(overshoot_s)
            return
        for record in records:
            self._dispatch(record)
        for state in self.partitions.values():
            before = self.clock()
            outcomes = state.core.tick(POLL_RESOLUTION_MS)
            for outcome in outcomes:
                if outcome.decision is not None:
                    SLACK_MS.observe(max(0.0, before - outcome.decision.deadline_ms))
            self._emit(state, outcomes)
        policy = self.source.new_policy()
        if policy is not None:
            self.apply_policy(policy)
        try:
            if self.sink.end_step(self._offsets if self.dirty else None):
                self.dirty = False
        except Redo as exc:
            log.warning("%s; deciding again from the committed offsets", exc)
            self._rewind()
            return
        now = self.clock()
        if now >= self.metrics_due:
            self.metrics_due = now + 1000.0
            self._update_metrics()
        if records:
            BATCH_SECONDS.observe(time.perf_counter() - started)

    def _after_pause(self, paused_s: float) -> None:
        """This process was stopped (SIGSTOP, a VM pause, swap) long enough for another
        instance to have taken its partitions and answered their requests. Decide nothing
        from memory: read back what is answered and re-read the inputs from the committed
        offsets first (:meth:`_rewind`); a rebalance, if one happened, follows on the
        next poll."""
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

    def _dispatch(self, record: InRecord) -> None:
        arrival = self.decode(record)
        state = self.partitions.get(arrival.partition)
        if state is None:  # a record fetched just before its partition was revoked
            return
        self.dirty = True
        if isinstance(arrival, Request):
            self.consumed["input"] += 1
            try:
                outcomes, dead_letter = state.on_request(arrival)
                if dead_letter is not None:
                    self._dead_letter(arrival, dead_letter)
                self._emit(state, outcomes)
            except Exception as exc:  # noqa: BLE001 - one record must never stop the service
                # A bug, not bad bytes (decoding never raises): keep its traceback, answer
                # this one request, and go on, so it cannot crash every restart.
                log.exception("failed on %s", arrival.where())
                self._reject(state, arrival, f"internal error on this record: {exc!r}"[:300])
        else:
            self.consumed["scores"] += 1
            try:
                self._emit(state, state.on_answer(arrival))
            except Exception as exc:  # noqa: BLE001 - as above: skip this one answer
                log.exception("failed on %s", arrival.where())
                self.decode.bad_records.skip("scores", arrival.where(), repr(exc))

    def _reject(self, state: PartitionState, request: Request, reason: str) -> None:
        outcomes = state.reject(request, reason)
        if outcomes:
            self._dead_letter(request, reason)
        self._emit(state, outcomes)

    def _emit(self, state: PartitionState, outcomes: list[Outcome]) -> None:
        if not outcomes:
            return
        self.dirty = True
        p = state.partition
        scored, decisions, write = self.scored_topic, self.decisions_topic, self.write
        for outcome in outcomes:
            key = outcome.request_id.encode()
            decision = outcome.decision
            if decision is None:  # provisional: no decision yet, a header says so
                write((scored, encode(outcome.scored), key, p, [(PROVISIONAL_HEADER, b"1")]))
                PROVISIONAL.inc()
                continue
            write((scored, encode(outcome.scored), key, p, None))
            if state.late:
                decision = self._report_late(state, decision)
            write((decisions, encode(decision), key, p, None))
            self.decided[outcome.scored.status].inc()
        reply = self.sink.reply
        for reply_to, outcome in state.settle(outcomes):
            reply(reply_to, outcome.scored)

    def _report_late(self, state: PartitionState, decision: Decision) -> Decision:
        """``decision`` carrying the partition's late answers counted since its last one."""
        late = state.take_late()
        totals = self.late
        for model, n in late.items():
            totals[model] = totals.get(model, 0) + n
        return msgspec.structs.replace(decision, late=late)

    def _dead_letter(self, request: Request, reason: str) -> None:
        value, key = request.record.value() or b"", request.record.key() or b""
        headers: Headers = [(DEADLETTER_REASON_HEADER, reason.encode()),
                            ("rendezvous.source", request.where().encode())]
        limit = self.settings.serve.deadletter_max_bytes
        if len(value) + len(key) > limit:
            # The raw archive keeps every byte; a dead letter must fit any topic's limit.
            headers.append(("rendezvous.truncated", str(len(value)).encode()))
            value, key = value[:limit // 2], key[:MAX_ID_LENGTH]
        self.write((self.settings.topic("deadletter"), value, key, 0, headers))

    # -- offsets and metrics -------------------------------------------------

    def _offsets(self) -> Offsets:
        """Per partition: its lowest unanswered input offset, and its scores consumed."""
        offsets = []
        for p, state in self.partitions.items():
            committable = state.inputs.committable()
            if committable is not None:
                offsets.append(Position(self.input_topic, p, committable))
            if state.scores_next is not None:
                offsets.append(Position(self.scores_topic, p, state.scores_next))
        return offsets

    def _commit(self) -> None:
        """Commit everything decided so far and wait until it is done (rebalance, stop)."""
        self.sink.commit_all(self._offsets())
        self.dirty = False

    def _update_metrics(self) -> None:
        for kind, count in self.consumed.items():
            RECORDS.labels(kind).inc(count)
            self.consumed[kind] = 0
        for model, count in self.late.items():
            LATE.labels(model).inc(count)
        self.late.clear()
        PENDING.set(sum(s.core.pending() for s in self.partitions.values()))
        stats = [s.core.stats() for s in self.partitions.values()]
        ORPHANS.set(sum(st.orphans for st in stats))
        ORPHANS_DISCARDED.set(sum(st.orphans_expired + st.orphans_dropped for st in stats))
        self.margin.update(self.sink.output_p99_ms())
        MARGIN_MS.set(self.margin.ms)
        now = self.clock()
        for model in self.latency.models():
            p99 = self.latency.p99(model, now)
            if p99 is not None:
                MODEL_P99_MS.labels(model).set(p99)

    # -- partitions (the source's listener) and policy -------------------------

    def assigned(self, committed: Mapping[int, int | None]) -> None:
        """Fresh partition states from what the sink holds: the answered ids after the
        committed input offsets."""
        self.rebalanced = True
        for p, done in self.source.answered(committed).items():
            state = PartitionState(p, self.policy, self.clock, self.margin, self.scales,
                                   self.latency, deadlines=self.deadlines)
            state.core.mark_decided(done)
            self.partitions[p] = state
            log.info("partition %d: %d answered ids restored", p, len(done))

    def revoked(self, partitions: Iterable[int]) -> None:
        self.rebalanced = True
        # Commit what was decided, so the next owner starts where this one stops.
        self._commit()
        for p in partitions:
            if self.partitions.pop(p, None) is not None:
                log.info("revoked partition %d", p)

    def lost(self, partitions: Iterable[int]) -> None:
        self.rebalanced = True
        # Lost (not revoked): what was not committed can no longer be.
        for p in partitions:
            self.partitions.pop(p, None)
        self.dirty = False
        self.sink.discard()

    def _rewind(self) -> None:
        """Forget what was decided since the last commit, go back to the committed
        offsets, and decide those requests again."""
        self.dirty = False
        # Results still in flight land (or fail) first, so the read-back sees them.
        self.sink.discard(self.stuck_s)
        committed = self.source.rewind()
        self.assigned(committed)
        log.warning("rewound %d partitions to their committed offsets", len(committed))

    def apply_policy(self, policy: Policy) -> None:
        """Use ``policy`` for the requests that arrive from now on (an invalid one is
        logged and ignored)."""
        try:
            for state in self.partitions.values():
                state.core.set_policy(policy)
        except PolicyError as exc:
            log.error("ignoring an invalid policy from the control topic: %s", exc)
            return
        self.policy = policy
        log.warning("policy changed live: prefer=%s deadline_ms=%s rules=%s map_scores=%s "
                    "prefer_in_time=%s", policy.prefer, policy.deadline_ms, policy.rules,
                    policy.map_scores, policy.prefer_in_time)
