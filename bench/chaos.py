"""Chaos run: kill -9 a worker, the decoy and the rendezvous under load, then restart the broker.

    python bench/chaos.py [--rate 200] [--deadline-ms 50] [--broker-kill] [--monitor]

An open-loop producer sends events at a fixed rate (each with its own ``ts``
and ``deadline_ms``) while the whole pipeline runs as separate processes
(:func:`rendezvous.local.pipeline.start_pipeline`: primary and canary workers,
decoy, one serve; the monitor optionally). In turn, each component is killed
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
cluster. ``run()`` returns the Markdown section ``## Chaos run``.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import confluent_kafka
import msgspec
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from rendezvous import local
from rendezvous.archive import read_archive
from rendezvous.local.kafka import kafka_version
from rendezvous.local.pipeline import PipelineSpec, component_env, start_pipeline
from rendezvous.local.processes import alive, tail
from rendezvous.local.stack import restart_broker
from rendezvous.local.supervisor import Supervisor
from rendezvous.messages import decode_scored
from rendezvous.model import sample_events
from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise, make_producer
from rendezvous.transport.topics import apply_topics

REPO = Path(__file__).resolve().parents[1]
COMPONENT_FAULTS = ("primary", "decoy", "serve-0")
"""Components killed with SIGKILL, in this order (names of :func:`start_pipeline`)."""
BROKER = "broker"
STATUSES = ("ok", "fallback", "timeout", "rejected")

QUIET = logging.getLogger("bench.chaos.librdkafka")
"""The harness's own Kafka clients log here, not to stderr: while the broker restarts,
every one of them reports each refused connection."""
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False


@dataclass(frozen=True)
class ChaosConfig:
    """Load and timing of one chaos run."""

    rate_per_s: float = 200.0
    """Open-loop send rate (events per second), whatever the pipeline does."""
    deadline_ms: float = 50.0
    """``deadline_ms`` of every event."""
    steady_s: float = 10.0
    """Load before the first fault (the steady-state baseline) and after the last one."""
    outage_s: float = 1.0
    """How long a killed component stays down before it is restarted."""
    settle_s: float = 8.0
    """Load after a component (or the broker) is back, before the next fault."""
    faults: tuple[str, ...] = (*COMPONENT_FAULTS, BROKER)
    broker_kill: bool = False
    """Stop the broker with SIGKILL instead of SIGTERM."""
    monitor: bool = False
    """Also run the monitor (off the results path; off by default to leave CPU to the rest)."""
    answer_timeout_s: float = 120.0
    """How long to wait, after the load, for every request's result."""
    archive_timeout_s: float = 60.0
    """How long to wait, after the load, for the decoy to commit every input."""
    late_slack_ms: float = 10.0
    """A result later than ``deadline_ms`` plus this is counted as past its deadline."""


@dataclass
class Phase:
    """A stretch of the run: requests whose ``ts`` is in ``[start_ms, end_ms)``."""

    name: str
    start_ms: float
    end_ms: float = float("inf")
    down_s: float | None = None
    """Kill (or broker stop) until the component answered again."""


@dataclass
class Crash:
    """A component that exited by itself during the run (restarted by the harness)."""

    name: str
    at_ms: float
    log_tail: str


@dataclass
class PhaseResult:
    phase: Phase
    requests: int
    statuses: dict[str, int]
    lost: int
    duplicated: int
    late: int
    p50_ms: float | None
    p99_ms: float | None
    crashes: list[str]


@dataclass
class ChaosResult:
    """The verdict of a run, from the topics and the archive."""

    config: ChaosConfig
    phases: list[PhaseResult]
    produced: int
    produce_failures: int
    accepted: int
    """Requests on the input topic."""
    answered: int
    lost: list[str]
    duplicated: dict[str, int]
    unexpected: list[str]
    """Result ids that no input carried."""
    archived: int
    missing_from_archive: list[str]
    crashes: list[Crash]
    skipped: list[str] = field(default_factory=list)
    """Faults not run, with the reason."""
    pids: list[int] = field(default_factory=list)
    """Every component pid the run started (all gone when it returns)."""
    server_pids: list[int] = field(default_factory=list)
    """Every Kafka and Redis pid of the run's own local stack (all gone when it returns)."""
    load_average: tuple[float, float] = (0.0, 0.0)
    """The machine's 1-minute load average when the load started and when it stopped."""
    log_dir: Path | None = None


# -- load --------------------------------------------------------------------


class Load:
    """Produces events at a fixed rate in a thread (open loop: sends never wait for answers)."""

    def __init__(self, settings: Settings, rate_per_s: float, deadline_ms: float) -> None:
        self.settings, self.rate, self.deadline_ms = settings, rate_per_s, deadline_ms
        self.features = [e["features"] for e in sample_events(1000, seed=17)]
        self.producer = make_producer(settings, logger=QUIET)
        self.sent: dict[str, float] = {}
        self.failed: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-load", daemon=True)
        self._warm_up()

    def _warm_up(self) -> None:
        """Get the idempotent producer its id before the clock starts."""
        topic = self.settings.topic("chaos-warm-up")
        admin = AdminClient(self.settings.kafka_config(logger=QUIET))
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result()
        self.producer.produce(topic, b"")
        flush_or_raise(self.producer)

    def start(self) -> None:
        self._thread.start()

    def stop(self, flush_timeout_s: float = 120.0) -> None:
        self._stop.set()
        self._thread.join(30)
        flush_or_raise(self.producer, flush_timeout_s)

    def _delivered(self, error: KafkaError | None, record: Message) -> None:
        if error is not None:
            self.failed[_key(record)] = str(error)

    def _run(self) -> None:
        topic = self.settings.topic("input")
        produce, poll = self.producer.produce, self.producer.poll
        started, i = time.perf_counter(), 0
        while not self._stop.is_set():
            wait = started + i / self.rate - time.perf_counter()
            if wait > 0 and self._stop.wait(wait):
                break
            rid = f"chaos-{i:07d}"
            ts = time.time() * 1000.0
            value = msgspec.json.encode({"id": rid, "features": self.features[i % 1000],
                                         "deadline_ms": self.deadline_ms, "ts": ts})
            while True:
                try:
                    produce(topic, value, rid.encode(), on_delivery=self._delivered)
                    break
                except BufferError:  # local queue full (broker away for long): wait for room
                    poll(0.05)
            self.sent[rid] = ts
            poll(0)
            i += 1


# -- reading back --------------------------------------------------------------


class TopicTail:
    """Reads every partition of a topic from the beginning, read_committed, without a group."""

    def __init__(self, settings: Settings, logical: str) -> None:
        topic = settings.topic(logical)
        self.consumer = Consumer(settings.kafka_config(**{
            "group.id": f"{settings.group('chaos-reader')}-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "logger": QUIET,
        }))
        meta = self.consumer.list_topics(topic, timeout=30).topics[topic]
        self.partitions = set(meta.partitions)
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
                              for p in self.partitions])
        self.at_end: set[int] = set()

    def poll(self, timeout_s: float = 0.2) -> list[Message]:
        records = []
        for record in self.consumer.consume(5000, timeout_s):
            error = record.error()
            if error is None:
                self.at_end.discard(record.partition())
                records.append(record)
            elif error.code() == KafkaError._PARTITION_EOF:
                self.at_end.add(int(record.partition() or 0))
        return records

    def read_to_end(self, timeout_s: float = 60.0) -> Iterator[Message]:
        """Every record up to the end of each partition (call once nothing writes any more)."""
        give_up = time.monotonic() + timeout_s
        while self.at_end != self.partitions:
            if time.monotonic() > give_up:
                raise TimeoutError(f"partitions {sorted(self.partitions - self.at_end)} "
                                   f"not read to their end in {timeout_s:.0f} s")
            yield from self.poll()

    def close(self) -> None:
        self.consumer.close()


class Answers:
    """The ids with a result on ``scored`` so far (read_committed), read incrementally."""

    def __init__(self, settings: Settings) -> None:
        self.reader, self.seen = TopicTail(settings, "scored"), set[str]()

    def cover(self, ids: set[str], timeout_s: float) -> bool:
        """Read on until every id in ``ids`` has a result; whether they all had in time."""
        give_up = time.monotonic() + timeout_s
        while not ids <= self.seen and time.monotonic() < give_up:
            self.seen.update(_key(r) for r in self.reader.poll())
        return ids <= self.seen

    def close(self) -> None:
        self.reader.close()


def wait_for_decoy(settings: Settings, timeout_s: float) -> bool:
    """Whether the decoy committed (so: made durable) every input record in time."""
    topic = settings.topic("input")
    probe = Consumer(settings.kafka_config(**{"group.id": settings.group("decoy"),
                                              "enable.auto.commit": False, "logger": QUIET}))
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
            self.phases.append(Phase("steady", _now_ms()))
            self.load_average = (os.getloadavg()[0], 0.0)
            load.start()
            try:
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
        if fault == BROKER:
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
        inputs = TopicTail(self.settings, "input")
        accepted: dict[str, tuple[int, int]] = {}
        for record in inputs.read_to_end():
            accepted[_key(record)] = (int(record.partition() or 0), int(record.offset() or 0))
        inputs.close()
        scored = TopicTail(self.settings, "scored")
        results: dict[str, list[Any]] = collections.defaultdict(list)
        for record in scored.read_to_end():
            results[_key(record)].append(decode_scored(record.value() or b""))
        scored.close()
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


@contextmanager
def local_stack(state_dir: Path) -> Iterator[tuple[Settings, list[int]]]:
    """A local Kafka + Redis of this run alone: (its settings, every server pid it had).

    The list grows when the broker is restarted; on the way out every server is
    stopped by pid, and any that is still alive is an error.
    """
    stack = Settings(state_dir=state_dir)
    endpoints = local.up(stack)
    pids = [endpoints.kafka_pid, endpoints.redis_pid]
    try:
        yield stack.model_copy(update={"bootstrap_servers": endpoints.bootstrap_servers,
                                       "redis_url": endpoints.redis_url}), pids
    finally:
        local.down(stack)
        leftover = [p for p in pids if alive(p)]
        if leftover:
            raise RuntimeError(f"chaos: local stack processes outlived the run: {leftover}")


def chaos_settings(base: Settings) -> Settings:
    """``base``'s Kafka and Redis, with topics of this run alone."""
    return base.model_copy(update={
        "bootstrap_servers": base.kafka_bootstrap(), "redis_url": base.redis(),
        "topic_prefix": f"chaos{uuid.uuid4().hex[:8]}.",
        "topics_file": REPO / "topics.yaml", "models_dir": REPO / "models"})


def run_chaos(work_dir: Path, config: ChaosConfig, own_stack: bool | None = None) -> ChaosResult:
    """A chaos run on a local stack of its own (``own_stack``; by default unless
    ``KAFKA_BOOTSTRAP_SERVERS`` is set), else on the environment's cluster."""
    if own_stack is None:
        own_stack = not os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not own_stack:
        return Chaos(chaos_settings(Settings()), work_dir, config, stack=None).run()
    with local_stack(work_dir / "state") as (stack, server_pids):
        chaos = Chaos(chaos_settings(stack), work_dir, config, stack)
        try:
            result = chaos.run()
        finally:
            server_pids.extend(chaos.server_pids)
        result.server_pids = server_pids
        return result


def to_markdown(result: ChaosResult, command: str = "python bench/chaos.py") -> str:
    """The result as the Markdown section ``## Chaos run``."""
    c = result.config
    broker = "an existing cluster" if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") \
        else f"a local single-node broker (Kafka {kafka_version()})"
    lines = [
        "## Chaos run",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, confluent-kafka {confluent_kafka.__version__} / "
        f"librdkafka {confluent_kafka.libversion()[0]}, {broker} and Redis on the same machine; "
        f"1-minute load average {result.load_average[0]:.1f} when the load started, "
        f"{result.load_average[1]:.1f} when it stopped (latencies are only comparable "
        f"between runs at a similar load).",
        "",
        f"Open-loop load of {c.rate_per_s:g} events/s, `deadline_ms` {c.deadline_ms:g}, through "
        f"the whole pipeline as separate processes (primary and canary workers, decoy, one "
        f"serve{', monitor' if c.monitor else ''}). {c.steady_s:g} s of steady load, then in "
        f"turn: each component killed with SIGKILL and restarted after {c.outage_s:g} s, then "
        f"the broker {'killed (SIGKILL)' if c.broker_kill else 'stopped (SIGTERM)'} and started "
        f"again on the same ports and data; {c.settle_s:g} s of load after each recovery. A "
        f"request counts in the window its `ts` falls in (a fault's window runs from the kill "
        f"to the next fault; *down* = kill until the component answered again). *late* = "
        f"result more than {c.late_slack_ms:g} ms past the deadline. Statuses and latency "
        f"(request `ts` to decision) are read back from `scored` (read_committed) after every "
        f"component stopped; *lost* = on `input` without a result, *duplicated* = more than "
        f"one result.",
        "",
        "| window | from-to (s) | down (s) | requests | ok | fallback | timeout | rejected "
        "| late | p50 / p99 latency (ms) | lost | duplicated | exited by itself |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    start = result.phases[0].phase.start_ms if result.phases else 0.0
    for r in result.phases:
        p = r.phase
        span = f"{(p.start_ms - start) / 1000:.1f}-{(p.end_ms - start) / 1000:.1f}"
        down = f"{p.down_s:.1f}" if p.down_s is not None else ""
        latency = (f"{r.p50_ms:,.0f} / {r.p99_ms:,.0f}"
                   if r.p50_ms is not None and r.p99_ms is not None else "")
        name = p.name if p.name in ("steady", "steady (after)", BROKER) \
            else f"kill -9 {p.name}"
        if p.name == BROKER:
            name = f"broker {'kill -9' if c.broker_kill else 'restart'}"
        lines.append(
            f"| {name} | {span} | {down} | {r.requests:,} | "
            + " | ".join(f"{r.statuses.get(s, 0):,}" for s in STATUSES)
            + f" | {r.late:,} | {latency} | {r.lost} | {r.duplicated} "
              f"| {', '.join(r.crashes) or '-'} |")
    lines += [
        "",
        f"Totals: {result.produced:,} events sent ({result.produce_failures} not acknowledged), "
        f"{result.accepted:,} on the input topic, {result.answered:,} answered, "
        f"**{len(result.lost)} lost, {len(result.duplicated)} duplicated**, "
        f"{len(result.unexpected)} results for unknown ids; raw archive: "
        f"{result.archived:,} input records (deduplicated), "
        f"**{len(result.missing_from_archive)} inputs missing**.",
    ]
    for crash in result.crashes:
        last = crash.log_tail.strip().splitlines()[-1:] or ["(empty log)"]
        lines.append(f"\n- `{crash.name}` exited by itself at "
                     f"+{(crash.at_ms - start) / 1000:.1f} s and was restarted; last log "
                     f"line: `{last[0][:200]}`")
    for reason in result.skipped:
        lines.append(f"\nSkipped: {reason}.")
    return "\n".join(lines) + "\n"


def run(config: ChaosConfig | None = None, command: str = "python bench/chaos.py") -> str:
    """Run the chaos run (on its own local stack unless one is given); the Markdown section.

    The logs are kept (their directory printed to stderr) when something was lost,
    duplicated or missing; otherwise everything is removed.
    """
    work = Path(tempfile.mkdtemp(prefix="rendezvous-chaos-"))
    result = run_chaos(work, config or ChaosConfig())
    if result.lost or result.duplicated or result.missing_from_archive or result.crashes:
        print(f"chaos: logs kept in {work}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return to_markdown(result, command)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rate", type=float, default=ChaosConfig.rate_per_s)
    parser.add_argument("--deadline-ms", type=float, default=ChaosConfig.deadline_ms)
    parser.add_argument("--broker-kill", action="store_true",
                        help="SIGKILL the broker instead of stopping it cleanly")
    parser.add_argument("--monitor", action="store_true", help="also run the monitor")
    args = parser.parse_args(argv)
    command = "python bench/chaos.py" + "".join(f" {a}" for a in (argv or sys.argv[1:]))
    print(run(ChaosConfig(rate_per_s=args.rate, deadline_ms=args.deadline_ms,
                          broker_kill=args.broker_kill, monitor=args.monitor), command))


if __name__ == "__main__":
    main()
