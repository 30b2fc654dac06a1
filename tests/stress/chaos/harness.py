"""Chaos run: kill -9 the pipeline's components under load, then restart the broker.
Its command line is ``python bench/chaos.py``; ``tests/stress/test_chaos.py`` runs it too.

An open-loop producer sends events at a fixed rate (each with its own ``ts``
and ``deadline_ms``) while the whole pipeline runs as separate processes
(:func:`rendezvous.local.pipeline.start_pipeline`: primary and canary workers,
decoy, one serve; the monitor optionally). In turn, a worker, the decoy and serve
(with ``--every-component``: both workers, the decoy, serve and the monitor) are killed
with SIGKILL, left down for a short outage and restarted; then the broker is
stopped and started again on the same ports and data. Meanwhile the harness
acts as a process supervisor would: a component that exits by itself is
restarted too, and the restart is reported.

Afterwards, with every component stopped, the verdict comes from Kafka and the
archive, never from the components: every request on the input topic has
exactly one result on ``scored`` (read_committed) and one row in the raw
archive (deduplicated on read). Each request is counted in the phase its
``ts`` falls in: a fault's window runs from the kill to the next fault.

Starts its own local Kafka + Redis in a temporary state directory unless
``KAFKA_BOOTSTRAP_SERVERS`` is set (then ``REDIS_URL`` too); the broker
restart needs the local stack and is skipped, saying so, on an external
cluster. :func:`run_chaos` returns what it found (:mod:`.report` words it).
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from confluent_kafka import Message, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

from rendezvous.archive import read_archive
from rendezvous.demo.stack import lease
from rendezvous.demo.workload import OpenLoop, warm_producer
from rendezvous.local.kafka import kill9
from rendezvous.local.pipeline import PipelineSpec, component_env, start_pipeline
from rendezvous.local.processes import alive, tail
from rendezvous.local.stack import read as read_local
from rendezvous.local.stack import restart_broker
from rendezvous.local.supervisor import Supervisor
from rendezvous.messages import Undecodable, decode_scored, is_provisional
from rendezvous.model import sample_events
from rendezvous.settings import LocalSettings, Settings
from rendezvous.transport.clients import flush_or_raise, make_consumer
from rendezvous.transport.connect import kafka_config
from rendezvous.transport.reader import TopicReader
from rendezvous.transport.topics import apply_topics
from tests.stress.chaos.report import (
    BROKER,
    CLUSTER_BROKER,
    EVERY_COMPONENT,
    ChaosConfig,
    ChaosResult,
    Crash,
    Phase,
    PhaseResult,
)

QUIET = logging.getLogger(f"{__name__}.librdkafka")
"""The harness's own Kafka clients log here, not to stderr: while the broker restarts,
every one of them reports each refused connection."""
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False


# -- load --------------------------------------------------------------------


class Load:
    """Produces events at a fixed rate in a thread (open loop: sends never wait for answers)."""

    def __init__(self, settings: Settings, rate_per_s: float, deadline_ms: float) -> None:
        features = [msgspec.json.encode(e["features"]) for e in sample_events(1000, seed=17)]
        deadline = msgspec.json.encode(deadline_ms)

        def make(i: int, ts: float) -> tuple[bytes, bytes]:
            rid = b"chaos-%07d" % i
            return rid, (b'{"id":"%s","features":%s,"deadline_ms":%s,"ts":%.3f}'
                         % (rid, features[i % 1000], deadline, ts))

        self.producer = warm_producer(settings, logger=QUIET)
        self.loop = OpenLoop(self.producer, settings.topic("input"), rate_per_s, make, track=True)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def sent(self) -> dict[str, float]:
        """Request id -> ``ts`` of every event sent."""
        return {f"chaos-{i:07d}": self.loop.ts(i) for i in range(self.loop.sent)}

    @property
    def failed(self) -> dict[str, str]:
        return self.loop.failed

    def start(self) -> None:
        self._thread = self.loop.start(self._stop)

    def stop(self, flush_timeout_s: float = 120.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        flush_or_raise(self.producer, flush_timeout_s)


# -- reading back --------------------------------------------------------------


def _reader(settings: Settings, logical: str) -> TopicReader:
    """Every partition of a topic from the beginning, read_committed, without a group."""
    return TopicReader(settings, settings.topic(logical), name="chaos-reader",
                       config={"logger": QUIET})


class Answers:
    """The ids with a result on ``scored`` so far (read_committed), read incrementally."""

    def __init__(self, settings: Settings) -> None:
        self.reader, self.seen = _reader(settings, "scored"), set[str]()

    def cover(self, ids: set[str], timeout_s: float) -> bool:
        """Read on until every id in ``ids`` has a result; whether they all had in time."""
        give_up = time.monotonic() + timeout_s
        while not ids <= self.seen and time.monotonic() < give_up:
            self.seen.update(_key(r) for r in self.reader.poll(0.2, 5000)
                             if not is_provisional(r.headers()))
        return ids <= self.seen

    def close(self) -> None:
        self.reader.close()


def wait_for_decoy(settings: Settings, timeout_s: float) -> bool:
    """Whether the decoy committed (so: made durable) every input record in time."""
    topic = settings.topic("input")
    probe = make_consumer(settings, settings.group("decoy"), logger=QUIET)
    try:
        partitions = list(probe.list_topics(topic, timeout=30).topics[topic].partitions)
        give_up = time.monotonic() + timeout_s
        while time.monotonic() < give_up:
            committed = probe.committed([TopicPartition(topic, p) for p in partitions], 10)
            ends = [probe.get_watermark_offsets(TopicPartition(topic, p), 10)[1]
                    for p in partitions]
            if all(end <= 0 or c.offset >= end for c, end in zip(committed, ends, strict=True)):
                return True
            time.sleep(0.5)
        return False
    finally:
        probe.close()


# -- the run -------------------------------------------------------------------


class Chaos:
    """One chaos run on running Kafka/Redis: the pipeline, the load, the faults, the verdict."""

    def __init__(self, settings: Settings, work_dir: Path, config: ChaosConfig,
                 stack: Settings | None) -> None:
        self.settings, self.config, self.stack = settings, config, stack
        self.archive = work_dir / "archive"
        self.supervisor = Supervisor(work_dir / "logs", component_env(settings))
        self.crashes: list[Crash] = []
        self.phases: list[Phase] = []
        self.skipped: list[str] = []
        self.notes: list[str] = []
        self.down: set[str] = set()  # components killed on purpose, not to be revived
        self.all_pids: list[int] = []
        self.server_pids: list[int] = []  # brokers started by a restart
        self.load_average = (0.0, 0.0)

    def run(self) -> ChaosResult:
        config = self.config
        apply_topics(self.settings)
        spec = PipelineSpec(archive=self.archive, monitor=config.monitor)
        try:
            start_pipeline(self.supervisor, spec)
            self._note_pids()
            load = Load(self.settings, config.rate_per_s, config.deadline_ms)
            self.phases.append(Phase("warm-up" if config.warmup_s else "steady", _now_ms()))
            self.load_average = (os.getloadavg()[0], 0.0)
            load.start()
            try:
                if config.warmup_s:
                    self._watch(config.warmup_s)
                    self._begin("steady")
                self._watch(config.steady_s)
                for fault in config.faults:
                    self._fault(fault)
                self._begin("steady (after)")
                self._watch(config.steady_s)
            finally:
                load.stop()
            self.phases[-1].end_ms = _now_ms()
            self.load_average = (self.load_average[0], os.getloadavg()[0])
            accepted = set(load.sent) - set(load.failed)
            answers = Answers(self.settings)
            try:
                self._watch_until(lambda: answers.cover(accepted, 1.0), config.answer_timeout_s)
            finally:
                answers.close()
            self._watch_until(lambda: wait_for_decoy(self.settings, 5.0),
                              config.archive_timeout_s)
            self.supervisor.terminate("decoy")  # SIGTERM: it rolls what is buffered and commits
            self.supervisor.stop_all()
        finally:
            self._stop_everything()
        return self._verdict(load)

    # faults

    def _fault(self, fault: str) -> None:
        if fault == CLUSTER_BROKER:
            running = read_local(self.stack) if self.stack is not None else None
            if running is None or len(running.broker_pids) < 2:
                self.skipped.append("cluster broker kill: needs the run's own local cluster "
                                    "(ChaosConfig.brokers = 3)")
                return
            node = self._busiest_leader()
            phase = self._begin(fault)
            kill9(running.broker_pids[node - 1])
            self._watch(self.config.outage_s)
            assert self.stack is not None
            self.server_pids.append(restart_broker(self.stack, kill=True, node=node)
                                    .broker_pids[node - 1])
        elif fault == BROKER:
            if self.stack is None:
                self.skipped.append("broker restart: an external cluster "
                                    "(KAFKA_BOOTSTRAP_SERVERS) is not ours to restart")
                return
            phase = self._begin(BROKER)
            self.server_pids.append(restart_broker(self.stack, kill=self.config.broker_kill)
                                    .kafka_pid)
        else:
            phase = self._begin(fault)
            self.down.add(fault)
            self.supervisor.kill9(fault)
            self._watch(self.config.outage_s)
            self.supervisor.restart(fault)
            self.down.discard(fault)
            self._note_pids()
        phase.down_s = (_now_ms() - phase.start_ms) / 1000.0
        self._watch(self.config.settle_s)

    def _busiest_leader(self) -> int:
        """The broker leading the most input partitions (noted with what it leads, and the
        input topic's replication)."""
        leads: dict[int, dict[str, list[int]]] = collections.defaultdict(
            lambda: {"input": [], "scored": []})
        admin = AdminClient(kafka_config(self.settings, logger=QUIET))
        replicas = set()
        for logical in ("input", "scored"):
            topic = self.settings.topic(logical)
            meta = admin.list_topics(topic, timeout=10).topics[topic]
            for p, partition in sorted(meta.partitions.items()):
                leads[partition.leader][logical].append(p)
                replicas.add(len(partition.replicas))
        resource = ConfigResource(ConfigResource.Type.TOPIC, self.settings.topic("input"))
        in_sync = admin.describe_configs([resource])[resource].result()["min.insync.replicas"]
        node = max(sorted(leads), key=lambda b: len(leads[b]["input"]))
        self.notes.append(f"killed broker {node}: leader of input partitions "
                          f"{leads[node]['input']} and scored partitions {leads[node]['scored']} "
                          f"(replication factor {sorted(replicas)}, min.insync.replicas "
                          f"{in_sync.value})")
        return node

    def _begin(self, name: str) -> Phase:
        now = _now_ms()
        self.phases[-1].end_ms = now
        self.phases.append(Phase(name, now))
        return self.phases[-1]

    def _watch(self, seconds: float) -> None:
        """Wait ``seconds``, restarting any component that exits on its own meanwhile."""
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            self._revive()
            time.sleep(min(0.2, max(0.0, until - time.monotonic())))

    def _watch_until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        give_up = time.monotonic() + timeout_s
        while time.monotonic() < give_up:
            self._revive()
            if done():
                return True
        return False

    def _revive(self) -> None:
        for name, component in list(self.supervisor.components.items()):
            if name in self.down or alive(component.pid):
                continue
            self.crashes.append(Crash(name, _now_ms(), _log_tail(component.log)))
            print(f"chaos: {name} exited by itself; restarting it", file=sys.stderr)
            self.supervisor.restart(name)
            self._note_pids()

    def _note_pids(self) -> None:
        self.all_pids.extend(p for p in self.supervisor.pids() if p not in self.all_pids)

    def _stop_everything(self) -> None:
        try:
            self.supervisor.stop_all()
        finally:
            leftover = [p for p in self.all_pids if alive(p)]
            if leftover:
                raise RuntimeError(f"chaos: component processes outlived the run: {leftover}")

    # verdict

    def _verdict(self, load: Load) -> ChaosResult:
        accepted: dict[str, tuple[int, int]] = {}
        with _reader(self.settings, "input") as inputs:
            for record in inputs.read_to_end():
                accepted[_key(record)] = (int(record.partition() or 0),
                                          int(record.offset() or 0))
        results: dict[str, list[Any]] = collections.defaultdict(list)
        with _reader(self.settings, "scored") as scored:
            for record in scored.read_to_end():
                if is_provisional(record.headers()):  # exactly one *final* result per request
                    continue
                try:
                    results[_key(record)].append(decode_scored(record.value()))
                except Undecodable as exc:  # not a result: say so, count nothing
                    print(f"chaos: skipped an undecodable result at {record.topic()}/"
                          f"{record.partition()}/{record.offset()}: {exc}", file=sys.stderr)
        archive = read_archive(self.archive, topic="input")
        archived = set(zip(archive["partition"].to_pylist(), archive["offset"].to_pylist(),
                           strict=True))
        crash_names = collections.defaultdict(list)
        for crash in self.crashes:
            crash_names[self._phase_at(crash.at_ms)].append(crash.name)
        return ChaosResult(
            config=self.config,
            phases=[self._phase_result(p, load.sent, accepted, results, crash_names[p.name])
                    for p in self.phases],
            produced=len(load.sent),
            produce_failures=len(load.failed),
            accepted=len(accepted),
            answered=sum(1 for rid in accepted if rid in results),
            lost=sorted(rid for rid in accepted if rid not in results),
            duplicated={rid: len(r) for rid, r in results.items() if len(r) > 1},
            unexpected=sorted(rid for rid in results if rid not in accepted),
            archived=len(archived),
            missing_from_archive=sorted(rid for rid, at in accepted.items()
                                        if at not in archived),
            crashes=self.crashes,
            skipped=self.skipped,
            notes=self.notes,
            pids=self.all_pids,
            log_dir=self.supervisor.log_dir,
            load_average=self.load_average,
        )

    def _phase_at(self, at_ms: float) -> str:
        for phase in self.phases:
            if phase.start_ms <= at_ms < phase.end_ms:
                return phase.name
        return "after the load"

    def _phase_result(self, phase: Phase, sent: dict[str, float],
                      accepted: dict[str, tuple[int, int]], results: dict[str, list[Any]],
                      crashes: list[str]) -> PhaseResult:
        ids = [rid for rid, ts in sent.items()
               if phase.start_ms <= ts < phase.end_ms and rid in accepted]
        statuses: collections.Counter[str] = collections.Counter()
        latencies = []
        for rid in ids:
            if results.get(rid):
                first = results[rid][0]
                statuses[first.status] += 1
                latencies.append(first.latency_ms)
        latencies.sort()
        limit = self.config.deadline_ms + self.config.late_slack_ms
        return PhaseResult(
            phase=phase, requests=len(ids), statuses=dict(statuses),
            lost=sum(1 for rid in ids if not results.get(rid)),
            duplicated=sum(1 for rid in ids if len(results.get(rid, ())) > 1),
            late=sum(1 for v in latencies if v > limit),
            p50_ms=_quantile(latencies, 0.5), p99_ms=_quantile(latencies, 0.99),
            crashes=crashes,
        )


def _log_tail(log: Path, lines: int = 8) -> str:
    """The last lines a component wrote itself (librdkafka's ``%N|...`` lines left out)."""
    own = [line for line in tail(log, 400).splitlines() if not line.startswith("%")]
    return "\n".join(own[-lines:])


def _key(record: Message) -> str:
    return (record.key() or b"").decode()


def _quantile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _now_ms() -> float:
    return time.time() * 1000.0


# -- entry points ----------------------------------------------------------------


def chaos_settings(base: Settings) -> Settings:
    """``base``'s Kafka and Redis, with topics of this run alone."""
    return base.model_copy(update={"topic_prefix": f"chaos{uuid.uuid4().hex[:8]}."})


def run_chaos(work_dir: Path, config: ChaosConfig, own_stack: bool | None = None) -> ChaosResult:
    """A chaos run on a local stack of its own (``own_stack``; by default unless
    ``KAFKA_BOOTSTRAP_SERVERS`` is set), else on the environment's cluster."""
    if own_stack is None:
        own_stack = config.brokers > 1 or not os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    local_stack = Settings(state_dir=work_dir / "state",
                           local=LocalSettings(brokers=config.brokers))
    with lease(local_stack, own=own_stack) as stack:
        chaos = Chaos(chaos_settings(stack.settings(Settings())), work_dir, config, stack.local)
        try:
            result = chaos.run()
        finally:
            stack.pids.extend(chaos.server_pids)  # the lease checks they are gone too
        result.server_pids = stack.pids
    return result


CLUSTER = ChaosConfig(brokers=3, faults=(CLUSTER_BROKER,), outage_s=5.0, warmup_s=10.0)
"""The three-broker run of ``make bench``: one broker killed -9 under load, back after 5 s
(after a 10 s warm-up window: a fresh three-broker pipeline's first seconds measured
hundreds of ms slower, which is not the fault's doing)."""


EVERY = ChaosConfig(monitor=True, faults=(*EVERY_COMPONENT, BROKER))
"""The single-broker run of ``make bench``: every component killed -9 in turn, the monitor
included, then the broker restarted."""
