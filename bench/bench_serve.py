"""The rendezvous service through Kafka: decisions/s, and scheduling slack at the deadline.

1. Throughput: ``input`` and ``scores`` are pre-filled (every request with a
   primary and a canary score), then one ``rendezvous serve`` process starts;
   decisions/s = requests / (last decision - first decision). The core alone
   on the same requests (in process, no Kafka) is the baseline of the ratio.
2. Slack: no workers, requests at a steady rate with a 50 ms deadline, so each
   is decided by the deadline timer. Slack = decision time - deadline (from
   the ``decisions`` records; negative: serve decides a delivery margin early), and
   visibility = when a read_committed consumer got the result - deadline (adds the
   produce and the fetch, and in ``transactions`` mode the commit interval).

Run: ``python bench/bench_serve.py`` (or ``make bench``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from rendezvous.core import Rendezvous
from rendezvous.demo.signals import run_interruptibly
from rendezvous.demo.topic_records import TopicRecords
from rendezvous.local.pipeline import component_env
from rendezvous.local.supervisor import Supervisor
from rendezvous.messages import (
    InputEvent,
    Policy,
    Score,
    decode_decision,
    encode,
    is_provisional,
)
from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise, make_producer
from scratch import scratch_settings

REQUESTS = 20_000
SLACK_REQUESTS = 1_500
SLACK_RATE = 250.0
SLACK_DEADLINE_MS = 50.0
FEATURES = [0.5] * 30


def _prefill(settings: Settings, n: int) -> list[tuple[str, float]]:
    producer = make_producer(settings, **{"linger.ms": 5})
    now = time.time() * 1000
    requests = []
    for i in range(n):
        rid, p = f"r{i}", i % 4
        event = InputEvent(id=rid, features=FEATURES, deadline_ms=600_000, ts=now)
        producer.produce(settings.topic("input"), encode(event), rid.encode(), partition=p)
        for model, score in (("canary", 0.4), ("primary", 0.7)):
            answer = Score(id=rid, model=model, version="1", status="ok", score=score, label=0,
                           received_ms=now, scored_ms=now)
            producer.produce(settings.topic("scores"), encode(answer), rid.encode(), partition=p)
        producer.poll(0)
        requests.append((rid, now))
    flush_or_raise(producer)
    return requests


def core_alone(requests: list[tuple[str, float]]) -> float:
    """Decisions/s of the core on the same requests and answers, no Kafka."""
    core = Rendezvous(Policy(), lambda: time.time() * 1000)
    answers = [(Score(id=r, model=m, version="1", status="ok", score=s, label=0))
               for r, _ in requests for m, s in (("canary", 0.4), ("primary", 0.7))]
    started = time.perf_counter()
    for (rid, ts), canary, primary in zip(requests, answers[0::2], answers[1::2], strict=True):
        core.open(rid, ts, ts + 600_000)
        core.offer(canary)
        core.offer(primary)
    return len(requests) / (time.perf_counter() - started)


def _decisions(settings: Settings, n: int, timeout_s: float = 180) -> list:
    reader = TopicRecords(settings, "decisions")
    records = reader.read_until(lambda rs: len(rs) >= n, timeout_s)
    reader.close()
    return [decode_decision(r.value()) for r in records]


def through_kafka(settings: Settings, logs: Path) -> tuple[float, float]:
    requests = _prefill(settings, REQUESTS)
    supervisor = Supervisor(logs / "throughput", component_env(settings))
    try:
        supervisor.start("serve", ["serve", "--features-from", ""])
        decisions = _decisions(settings, REQUESTS)
    finally:
        supervisor.stop_all()
    decided = sorted(d.decided_ms for d in decisions)
    kafka_rate = len(decided) / ((decided[-1] - decided[0]) / 1000)
    return kafka_rate, core_alone(requests)


def slack(settings: Settings, logs: Path) -> dict[str, np.ndarray]:
    supervisor = Supervisor(logs / "slack", component_env(settings))
    visible: dict[str, float] = {}
    due: dict[str, float] = {}
    """Each request's deadline: its ``ts`` plus ``deadline_ms`` (a decision's own
    ``deadline_ms`` is when serve had to decide: earlier, by the delivery margin)."""
    stop = threading.Event()

    def consume() -> None:
        reader = TopicRecords(settings, "scored")
        while not stop.is_set():
            before = len(reader.records)
            reader.read_until(lambda rs, b=before: len(rs) > b, 0.2)
            now = time.time() * 1000
            for record in reader.records[before:]:
                if not is_provisional(record.headers()):
                    visible.setdefault(record.key().decode(), now)
        reader.close()

    try:
        supervisor.start("serve", ["serve", "--features-from", ""])
        thread = threading.Thread(target=consume)
        thread.start()
        producer = make_producer(settings)
        producer.produce(settings.topic("feedback"), b"warm-up")  # producer id before timing
        flush_or_raise(producer)
        start = time.perf_counter()
        for i in range(SLACK_REQUESTS):
            time.sleep(max(0.0, start + i / SLACK_RATE - time.perf_counter()))
            event = InputEvent(id=f"s{i}", features=FEATURES, deadline_ms=SLACK_DEADLINE_MS,
                               ts=time.time() * 1000)
            due[event.id] = event.ts + SLACK_DEADLINE_MS
            producer.produce(settings.topic("input"), encode(event), f"s{i}".encode(),
                             partition=i % 4)
            producer.poll(0)
        flush_or_raise(producer)
        decisions = _decisions(settings, SLACK_REQUESTS, 60)
        time.sleep(0.5)
        stop.set()
        thread.join()
    finally:
        supervisor.stop_all()
    return {
        "decision - deadline": np.array([d.decided_ms - due[d.id] for d in decisions]),
        "visible - deadline": np.array([at - due[i] for i, at in visible.items() if i in due]),
        "statuses": np.array([d.status == "timeout" for d in decisions]),
    }


def run() -> str:
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        with scratch_settings("serve") as settings:
            kafka_rate, core_rate = through_kafka(settings, Path(tmp))
        with scratch_settings("slack") as settings:
            measured = slack(settings, Path(tmp))
    mode = Settings().serve.exactly_once
    lines = [
        "## Rendezvous service through Kafka",
        "",
        f"Command: `python bench/bench_serve.py` against {_broker()}; "
        f"one `rendezvous serve` process in its default mode (`--exactly-once {mode}`), "
        f"{os.cpu_count()} cores shared with the broker.",
        "",
        f"Throughput: {REQUESTS:,} pre-filled requests, each with a canary and a primary "
        "score (decided on the primary's arrival).",
        "",
        "| | decisions/s | ratio |",
        "|---|---:|---:|",
        f"| core alone (in process, same requests) | {core_rate:,.0f} | 1.00 |",
        f"| `rendezvous serve` through Kafka (`{mode}`) | {kafka_rate:,.0f} | "
        f"{kafka_rate / core_rate:.2f} |",
        "",
        f"Slack: {SLACK_REQUESTS:,} requests at {SLACK_RATE:.0f}/s, deadline "
        f"{SLACK_DEADLINE_MS:g} ms, no "
        "workers, so every request is decided by the deadline timer "
        f"({measured['statuses'].mean():.1%} `timeout`).",
        "",
        "| ms after the deadline | p50 | p99 | max |",
        "|---|---:|---:|---:|",
    ]
    for name in ("decision - deadline", "visible - deadline"):
        values = measured[name]
        lines.append(f"| {name} | {np.percentile(values, 50):.2f} | "
                     f"{np.percentile(values, 99):.2f} | {values.max():.2f} |")
    lines += ["", "Times are after each request's deadline (its `ts` + `deadline_ms`; negative = "
              "before it). *decision* is when serve decided (its clock): a delivery margin "
              "before the deadline (`--margin-min-ms`..`--margin-max-ms`, from serve's own "
              "output path), so that the result is *received* by it. *visible* is when a "
              "read_committed consumer received the result: it adds the produce and the "
              "fetch.", ""]
    return "\n".join(lines)


def _broker() -> str:
    # BENCH_KAFKA_PID: the broker bench/run.py started for every section, not one given
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and not os.environ.get("BENCH_KAFKA_PID")
    return ("an existing broker" if given
            else "a local single-node broker (KRaft)")


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args()
    sys.exit(run_interruptibly(lambda: print(run())))
