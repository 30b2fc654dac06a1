"""What a chaos run (:mod:`.harness`) configures and finds, and its
Markdown section ``## Chaos run``."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import confluent_kafka

from rendezvous.local.kafka import kafka_version

COMMAND = "python bench/chaos.py"
COMPONENT_FAULTS = ("primary", "decoy", "serve-0")
"""Components killed with SIGKILL by default, in this order (names of :func:`start_pipeline`)."""
EVERY_COMPONENT = ("primary", "canary", "decoy", "serve-0", "monitor")
"""Every component :func:`start_pipeline` starts (the monitor when it runs)."""
BROKER = "broker"
CLUSTER_BROKER = "cluster broker"
"""On a local cluster (``brokers`` > 1): SIGKILL the broker leading the most input
partitions, restart it after ``outage_s``."""
STATUSES = ("ok", "fallback", "timeout", "rejected")


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
    warmup_s: float = 0.0
    """Load before the steady window, reported as its own window (``warm-up``)."""
    brokers: int = 1
    """Brokers of the run's own local stack (3: a replicated cluster, for
    :data:`CLUSTER_BROKER`)."""


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
    notes: list[str] = field(default_factory=list)
    """What a fault did (e.g. which broker led which partitions)."""
    pids: list[int] = field(default_factory=list)
    """Every component pid the run started (all gone when it returns)."""
    server_pids: list[int] = field(default_factory=list)
    """Every Kafka and Redis pid of the run's own local stack (all gone when it returns)."""
    load_average: tuple[float, float] = (0.0, 0.0)
    """The machine's 1-minute load average when the load started and when it stopped."""
    log_dir: Path | None = None


def _faults(c: ChaosConfig) -> str:
    """What the run's faults were, in a sentence."""
    said = []
    components = [f for f in c.faults if f in EVERY_COMPONENT]
    if components:
        said.append(f"{', '.join(components)} in turn killed with SIGKILL and restarted after "
                    f"{c.outage_s:g} s")
    if BROKER in c.faults:
        said.append(f"the broker {'killed (SIGKILL)' if c.broker_kill else 'stopped (SIGTERM)'}"
                    " and started again on the same ports and data")
    if CLUSTER_BROKER in c.faults:
        said.append("the broker leading the most input partitions killed with SIGKILL and "
                    f"started again after {c.outage_s:g} s (*down* includes its restart)")
    return ", then ".join(said) or "no fault"


def to_markdown(result: ChaosResult, command: str = COMMAND) -> str:
    """The result as the Markdown section ``## Chaos run``."""
    c = result.config
    broker = (f"a local single-node broker (Kafka {kafka_version()})" if result.server_pids
              else "an existing cluster")
    if c.brokers > 1:
        broker = (f"a local cluster of {c.brokers} KRaft brokers (Kafka {kafka_version()}, "
                  f"replication factor 3, min.insync.replicas 2)")
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
        f"serve{', monitor' if c.monitor else ''}). "
        + (f"{c.warmup_s:g} s of warm-up load, " if c.warmup_s else "")
        + f"{c.steady_s:g} s of steady load, then "
        f"{_faults(c)}; {c.settle_s:g} s of load after each recovery. A "
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
        name = p.name if p.name in ("warm-up", "steady", "steady (after)", BROKER) \
            else f"kill -9 {p.name}"
        if p.name == BROKER:
            name = f"broker {'kill -9' if c.broker_kill else 'restart'}"
        if p.name == CLUSTER_BROKER:
            name = f"kill -9 one of {c.brokers} brokers"
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
    for note in result.notes:
        lines.append(f"\n- {note}")
    for reason in result.skipped:
        lines.append(f"\nSkipped: {reason}.")
    return "\n".join(lines) + "\n"
