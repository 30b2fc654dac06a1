"""Worker throughput against a pre-filled input topic, next to a bare relay ceiling.

    python bench/bench_worker.py

Runs the worker's real loop (``relay.consume_loop`` + ``runner.Scorer``:
decode, one ONNX Runtime call per batch, produce, commit after the broker's
acknowledgements) in this process, pinned to one CPU, for each model and batch
size, each time with a fresh consumer group over the same pre-filled topic.
The **bare relay** runs the very same loop (same batching, delivery tracking
and commits) but copies each input record's bytes to the scores topic with no
decode or inference: the Kafka ceiling, so the worker's numbers are ratios.
Throughput is events from the first batch polled to the last score
acknowledged and committed. Uses ``KAFKA_BOOTSTRAP_SERVERS`` when set, else
starts (and stops) a local broker. ``run()`` returns the Markdown section.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable

import confluent_kafka
import msgspec
import onnxruntime as ort
from confluent_kafka import Message

from common import markdown_table, section
from rendezvous.demo.signals import run_interruptibly
from rendezvous.model import sample_events
from rendezvous.settings import Settings
from rendezvous.transport import relay
from rendezvous.transport.clients import (
    Stopper,
    flush_or_raise,
    make_consumer,
    make_producer,
    produce,
)
from rendezvous.worker import runner
from scratch import scratch_settings

EVENTS = 100_000
EVENTS_BATCH_1 = 8_000
BATCHES = (1, 64, 512)
MODELS = ("primary", "canary")
REPEATS = 3
DEADLINE_MS = 3_600_000.0
"""Long enough that no pre-filled event is shed while it waits in the topic."""


def prefill(settings: Settings, n: int) -> None:
    """``n`` named-form events spread over the input partitions."""
    producer = make_producer(settings, **{"linger.ms": 20})
    topic = settings.topic("input")
    distinct = [msgspec.json.encode({**e, "deadline_ms": DEADLINE_MS})
                for e in sample_events(1000, seed=11)]
    for i in range(n):
        produce(producer, topic, distinct[i % len(distinct)], f"b-{i}")
    flush_or_raise(producer, 120)


def measure(settings: Settings, kind: str, batch: int, n: int,
            in_flight: int) -> tuple[float, float]:
    """(events per wall second, events per CPU second of this whole process) of one loop
    over the first ``n`` input records; ``kind`` is a model or "relay"."""
    consumer = make_consumer(settings, f"{settings.topic_prefix}bench-{uuid.uuid4().hex[:8]}")
    producer = make_producer(settings)
    out = settings.topic("scores")
    handle: relay.Handle
    if kind == "relay":
        def handle(records: list[Message], on_delivery: Callable[..., None]) -> int:
            produce = producer.produce
            for r in records:
                produce(out, r.value(), r.key(), partition=r.partition() or 0,
                        on_delivery=on_delivery)
            return len(records)
    else:
        model = runner.load(settings, kind)
        handle = runner.Scorer(model, producer, out, settings.default_deadline_ms)
    stopper = Stopper(install=False)
    seen, started, cpu_started = 0, 0.0, 0.0

    def on_poll(records: list[Message], _seconds: float) -> None:
        nonlocal seen, started, cpu_started
        if not records:
            return
        if not seen:
            started, cpu_started = time.perf_counter(), time.process_time()
        seen += len(records)
        if seen >= n:
            stopper.stop()

    relay.consume_loop(consumer, producer, settings.topic("input"), handle, max_batch=batch,
                       max_wait_s=0.002, stopper=stopper, on_poll=on_poll,
                       max_in_flight=in_flight)
    # process_time counts every thread (librdkafka's too), and not time spent waiting for
    # the CPU, so it stays meaningful on a machine other work is using.
    return seen / (time.perf_counter() - started), seen / (time.process_time() - cpu_started)


def measure_all(settings: Settings) -> list[dict[str, float | int | str]]:
    """Median of REPEATS runs of every (loop, batch, pipelining) configuration.

    The repeats are interleaved (every configuration once, then again), so a busy
    moment on the machine hits all of them alike rather than one configuration.
    """
    plan = [(kind, batch, relay.MAX_IN_FLIGHT) for batch in BATCHES
            for kind in ("relay", *MODELS)]
    plan += [("primary", batch, 0) for batch in BATCHES]  # the alternative: flush every batch
    runs: dict[tuple[str, int, int], list[tuple[float, float]]] = {key: [] for key in plan}
    for _ in range(REPEATS):
        for kind, batch, in_flight in plan:
            n = EVENTS if batch > 1 else EVENTS_BATCH_1 if in_flight else EVENTS_BATCH_1 // 4
            runs[(kind, batch, in_flight)].append(measure(settings, kind, batch, n, in_flight))
    results: list[dict[str, float | int | str]] = []
    for (kind, batch, in_flight), measured in runs.items():
        rates, cpu = sorted(r for r, _ in measured), statistics.median(c for _, c in measured)
        results.append({"kind": kind, "batch": batch, "in_flight": in_flight,
                        "rate": statistics.median(rates), "low": rates[0], "high": rates[-1],
                        "cpu": cpu})
        print(f"{kind:8} batch {batch:4} in-flight {in_flight:2}: "
              + " ".join(f"{r:9,.0f}" for r in rates) + f" events/s, {cpu:9,.0f} events/CPU-s",
              file=sys.stderr)
    return results


def to_markdown(results: list[dict[str, float | int | str]], broker: str) -> str:
    """The results as a Markdown section: heading, command, conditions, table."""
    relay_rates = {r["batch"]: float(r["rate"]) for r in results if r["kind"] == "relay"}
    rows = []
    for r in results:
        batch, rate = int(r["batch"]), float(r["rate"])
        rows.append((r["kind"], batch, "flush" if r["in_flight"] == 0 else "pipelined",
                     f"{rate:,.0f}", f"{float(r['low']):,.0f}-{float(r['high']):,.0f}",
                     f"{rate / relay_rates[batch]:.2f}", f"{float(r['cpu']):,.0f}"))
    return section(
        "Worker throughput",
        "Command: `python bench/bench_worker.py`",
        f"The worker's real loop in one process pinned to one CPU (librdkafka threads "
        f"included), against a pre-filled input topic ({EVENTS:,} named-form events of 30 "
        f"features; fewer at batch 1), 4 partitions, {broker} on the same machine. "
        f"**events/s**: from the first batch polled to the last score acknowledged, median "
        f"of {REPEATS} interleaved runs (min-max). **events/CPU-s**: events per CPU-second "
        f"used by the whole process, all threads; it leaves out time spent waiting for a "
        f"CPU, so it is the steadier number when other work shares the machine. Offsets are "
        f"committed only after the broker acknowledged the batch's scores: *pipelined* = up "
        f"to {relay.MAX_IN_FLIGHT} batches in flight, acknowledged offsets committed every "
        f"{relay.COMMIT_INTERVAL_S * 1000:g} ms (what the worker does); *flush* = wait for "
        f"each batch's acknowledgements before the next poll. Bare relay = the same loop "
        f"copying the input bytes (no decode, no inference). "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"onnxruntime {ort.__version__}, confluent-kafka {confluent_kafka.__version__} / "
        f"librdkafka {confluent_kafka.libversion()[0]}.",
        markdown_table("| loop | batch | commit | events/s | min-max | vs bare relay "
                       "| events/CPU-s |", "|---|---:|---|---:|---:|---:|---:|", rows),
    )


def run() -> str:
    """Run the benchmark (starting a local broker if none is given); the Markdown section."""
    cpu = min(os.sched_getaffinity(0))
    before = os.sched_getaffinity(0)
    # BENCH_KAFKA_PID: the broker bench/run.py started for every section, not one given
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and not os.environ.get("BENCH_KAFKA_PID")
    with scratch_settings("bench", _say) as settings:
        prefill(settings, EVENTS)
        os.sched_setaffinity(0, {cpu})  # after the prefill: only the loop is measured
        try:
            results = measure_all(settings)
        finally:
            os.sched_setaffinity(0, before)
    return to_markdown(results, "an existing broker" if given else "a local single-node broker")


def _say(text: str) -> None:
    print(text, file=sys.stderr)


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args()
    sys.exit(run_interruptibly(lambda: print(run())))
