"""Why results are late: each late result of an open-loop run, split into its hops.

    python bench/why_late.py [--rate 2000] [--runs 3] [--seconds 10] [--warm-up 30]

Starts a local Kafka and Redis and the default pipeline (decoy and monitor on),
sets ``scored`` to broker-append timestamps (``LogAppendTime``), and sends
open-loop load as ``make bench`` does. For every result received after the
deadline it shows where the time went: the request's scheduled time to serve's
decision, the decision to the broker's append, the append to the reader. Late
results are grouped by 250 ms window (they come in clusters), each window with
the CPU every process used in it, the load generator and its reader included
(sampled from ``/proc`` every 50 ms): a cluster with one process busy points at it.
Not part of ``make bench``: a tool for finding the next cause.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from bench_pipeline import cpu_seconds, start
from common import progress
from measure import DEADLINE_MS, measure_rate, run_index, sample_bodies, tagged_requests
from rendezvous.demo.signals import run_interruptibly
from rendezvous.demo.workload import (
    OpenLoop,
    ScoredReader,
    instrument_gc_paused,
    now_ms,
    warm_producer,
)
from rendezvous.local.supervisor import Supervisor
from rendezvous.messages import decode_decision
from rendezvous.settings import Settings
from rendezvous.transport.connect import kafka_config
from rendezvous.transport.reader import OFFSET_END, TopicReader
from scratch import scratch

WINDOW_MS = 250.0
SAMPLE_S = 0.05
QUIET_S = 3.0


_log = progress("why-late")


def _append_timestamps(settings: Settings) -> None:
    """Let the broker stamp ``scored`` records when it appends them."""
    resource = ConfigResource("topic", settings.topic("scored"), incremental_configs=[
        ConfigEntry("message.timestamp.type", "LogAppendTime",
                    incremental_operation=AlterConfigOpType.SET)])
    admin = AdminClient(kafka_config(settings))
    for future in admin.incremental_alter_configs([resource]).values():
        future.result()


def _read(settings: Settings, tag: str, ready: Any, control: Any, out: Any) -> None:
    """Child process: per request of run ``tag``, (received, status, decided, appended)."""
    scored = ScoredReader(settings, OFFSET_END, prefix=f"{tag}-", name=f"{tag}-s")
    decisions = TopicReader(settings, settings.topic("decisions"), OFFSET_END,
                            name=f"{tag}-d", config={"fetch.wait.max.ms": 5})
    ready.set()
    decided_at: dict[int, float] = {}
    expected, last = None, time.monotonic()
    with instrument_gc_paused():
        while expected is None or (len(scored.arrived) < expected
                                   and time.monotonic() - last < QUIET_S):
            if scored.step(0.02):
                last = time.monotonic()
            for record in decisions.poll(0.0, 2000):
                rid = (record.key() or b"").decode()
                if rid.startswith(tag):
                    decided_at[run_index(rid, tag)] = decode_decision(record.value()).deadline_ms
            if expected is None and not control.empty():
                expected, last = control.get(), time.monotonic()
    scored.close()
    decisions.close()
    rows = {run_index(rid, tag): (at, scored.results[rid].status, scored.results[rid].decided_ms,
                                  scored.stamped[rid]) for rid, at in scored.arrived.items()}
    out.put((rows, decided_at))


def _sample_cpu(pids: dict[str, int], stop: threading.Event,
                out: list[tuple[float, dict[str, float]]]) -> None:
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    while not stop.wait(SAMPLE_S):
        now = {name: cpu_seconds(pid) for name, pid in pids.items()}
        out.append((now_ms(), {name: now[name] - before[name] for name in now}))
        before = now


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.1f}" if values else "?"


def one_run(settings: Settings, pids: dict[str, int], rate: float, seconds: float) -> None:
    """One open-loop run; prints the share in time and every cluster of late results."""
    tag = f"wl{uuid.uuid4().hex[:8]}"
    ctx = mp.get_context("spawn")
    ready, control, out = ctx.Event(), ctx.Queue(), ctx.Queue()
    reader = ctx.Process(target=_read, args=(settings, tag, ready, control, out), daemon=True)
    reader.start()
    if not ready.wait(60):
        raise RuntimeError("the reader process did not start")
    producer = warm_producer(settings)
    loop = OpenLoop(producer, settings.topic("input"), rate,
                    tagged_requests(tag, sample_bodies()))
    loop.t0 = now_ms() + 100.0
    samples: list[tuple[float, dict[str, float]]] = []
    stop = threading.Event()
    # The instrument too: its stalls would show as late results.
    watched = {**pids, "load generator": os.getpid(), "reader": reader.pid or 0}
    sampler = threading.Thread(target=_sample_cpu, args=(watched, stop, samples), daemon=True)
    sampler.start()
    n = int(rate * seconds)
    with instrument_gc_paused():
        loop.run(n)
    producer.flush(30)
    stop.set()
    control.put(n)
    rows, deadlines = out.get(timeout=120)
    reader.join(10)
    late = {i: row for i, row in rows.items() if row[0] - loop.ts(i) > DEADLINE_MS}
    print(f"\nrate {rate:,.0f}/s: {n:,} sent, {len(rows):,} answered, "
          f"{(len(rows) - len(late)) / n * 100:.2f} % within {DEADLINE_MS:g} ms, "
          f"sender behind its schedule by <= {loop.max_lag_ms:.1f} ms")
    clusters: dict[int, list[int]] = defaultdict(list)
    for i in late:
        clusters[int((loop.ts(i) - loop.t0) // WINDOW_MS)].append(i)
    for window, ids in sorted(clusters.items()):
        lo = loop.t0 + window * WINDOW_MS
        cpu: dict[str, float] = defaultdict(float)
        for at, used in samples:
            if lo <= at < lo + WINDOW_MS:
                for name, seconds_used in used.items():
                    cpu[name] += seconds_used
        busy = ", ".join(f"{name} {100 * s / (WINDOW_MS / 1000):.0f}" for name, s in
                         sorted(cpu.items(), key=lambda kv: -kv[1]) if s)
        statuses = sorted({rows[i][1] for i in ids})
        print(f"  at +{window * WINDOW_MS / 1000:5.2f} s: {len(ids):4} late ({'/'.join(statuses)});"
              f" median ms: decided +{median([rows[i][2] - loop.ts(i) for i in ids])} "
              f"(decide by +{median([deadlines[i] - loop.ts(i) for i in ids if i in deadlines])}), "
              f"decision->append {median([rows[i][3] - rows[i][2] for i in ids])}, "
              f"append->reader {median([rows[i][0] - rows[i][3] for i in ids])}; "
              f"cpu % {busy}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=2000.0, help="requests per second")
    parser.add_argument("--runs", type=int, default=3, help="measured runs")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of one run")
    parser.add_argument("--warm-up", type=float, default=30.0, help="seconds, not reported")
    args = parser.parse_args(argv)
    with (scratch("why-late", _log) as stack,
          tempfile.TemporaryDirectory(prefix="why-late-") as tmp):
        supervisors: list[Supervisor] = []
        try:
            settings = start("pipeline", stack.settings(Settings()), Path(tmp), supervisors)
            _append_timestamps(settings)
            pids = {name: c.pid for name, c in supervisors[-1].components.items()}
            if stack.pids:
                pids["broker"] = stack.pids[0]
            _log(f"warm-up: {args.warm_up:g} s at {args.rate:g}/s")
            measure_rate(settings, args.rate, args.warm_up)
            for _ in range(args.runs):
                one_run(settings, pids, args.rate, args.seconds)
                time.sleep(1.0)
        finally:
            for sup in supervisors:
                sup.stop_all()


if __name__ == "__main__":
    sys.exit(run_interruptibly(main))
