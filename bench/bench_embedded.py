"""``Embedded.score`` in process: latency and rows per CPU-second, and what archiving costs.

Scenarios, with the bundled models and the default policy (primary, then canary):

- **single row**: one caller, one ``score`` after another (closed loop);
- **batch of 64**: one caller, ``score_batch`` of 64 rows after another;
- **single row at a fixed rate, archive off / on**: open-loop calls at ``--rate`` per
  second, the same rows, once without and once with the archive (inputs and decisions in
  the decoy's Parquet layout). With the archive on the run asserts that nothing was
  dropped and that the archive holds a row per input and per decision;
- **archive and publishing on**, when ``KAFKA_BOOTSTRAP_SERVERS`` names a broker (``bench/run.py``
  starts one): the same, with every decision also published to the ``decisions`` topic of
  fresh topics; asserts every decision was delivered and none dropped.

Latency is the caller's wall time per call (p50/p99, µs); rows per CPU-second is rows
scored over the process's CPU time (every thread: callers, model threads, archive), so
it compares with the worker's rows per CPU-second in section ``models``. The Kafka
pipeline's latency at the same rate is in section ``pipeline``. ``run()`` returns the
Markdown section for ``docs/benchmarks.md``; run as a script, it prints it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

COMMAND = "python bench/bench_embedded.py"
CALLS = 20_000
BATCHES = 2_000
RATE = 1_000.0
WARM_UP = 500
BATCH = 64


@dataclass(frozen=True)
class Measured:
    name: str
    calls: int
    rows: int
    p50_us: float
    p99_us: float
    wall_s: float
    cpu_s: float
    statuses: dict[str, int]
    note: str = ""


def _rows(n: int) -> list[list[float]]:
    from rendezvous.model import load_dataset

    data = load_dataset().X
    return [[float(v) for v in data[i % len(data)]] for i in range(n)]


def _measure(name: str, calls: int, rows_per_call: int, call: Callable[[int], list],
             rate: float | None = None) -> Measured:
    """``calls`` calls of ``call(i)``, back to back or at ``rate`` per second."""
    for i in range(WARM_UP // rows_per_call + 1):
        call(i)
    latencies = np.empty(calls, dtype=np.int64)
    statuses: dict[str, int] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    next_at = time.perf_counter()
    for i in range(calls):
        if rate is not None:
            next_at += 1.0 / rate
            pause = next_at - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        started = time.perf_counter_ns()
        results = call(i)
        latencies[i] = time.perf_counter_ns() - started
        for result in results:
            statuses[result.status] = statuses.get(result.status, 0) + 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    p50, p99 = np.percentile(latencies, [50, 99]) / 1000.0
    return Measured(name, calls, calls * rows_per_call, float(p50), float(p99), wall, cpu,
                    statuses)


def measure(calls: int = CALLS, batches: int = BATCHES, rate: float = RATE) -> list[Measured]:
    from rendezvous.embedded import Embedded

    rows = _rows(4096)
    n = len(rows)
    found = []
    with Embedded() as embedded:
        found.append(_measure("single row", calls, 1,
                              lambda i: [embedded.score(rows[i % n])]))
        batch_rows = [rows[i:i + BATCH] for i in range(0, n - BATCH, BATCH)]
        found.append(_measure(f"batch of {BATCH}", batches, BATCH,
                              lambda i: embedded.score_batch(batch_rows[i % len(batch_rows)])))
        found.append(_measure(f"single row at {rate:,.0f}/s, archive off", calls, 1,
                              lambda i: [embedded.score(rows[i % n])], rate))
    with tempfile.TemporaryDirectory(prefix="rendezvous-bench-embedded-") as tmp:
        archive = Path(tmp) / "archive"
        with Embedded(archive=archive, archive_roll_s=1.0) as embedded:
            on = _measure(f"single row at {rate:,.0f}/s, archive on", calls, 1,
                          lambda i: [embedded.score(rows[i % n])], rate)
        stats = embedded.stats()
        made = calls + WARM_UP + 1
        if stats.archive_dropped != 0:
            raise AssertionError(f"the archive dropped {stats.archive_dropped} rows at "
                                 f"{rate:,.0f}/s: lower --rate")
        if stats.archived != 2 * made:
            raise AssertionError(f"archived {stats.archived} rows for {made} calls "
                                 f"(expected {2 * made}: an input and a decision each)")
        from rendezvous.archive import read_archive

        held = read_archive(archive, "input").num_rows
        if held != made:
            raise AssertionError(f"the archive holds {held} inputs for {made} calls")
        found.append(Measured(**{**on.__dict__, "note": f"drops 0, {held:,} inputs archived"}))
        if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
            found.append(_published(rows, calls, rate, Path(tmp) / "archive-2"))
    return found


def _published(rows: list[list[float]], calls: int, rate: float, archive: Path) -> Measured:
    """Archive and publishing on, onto fresh topics of the broker in the environment."""
    from rendezvous.embedded import Embedded
    from rendezvous.settings import Settings
    from rendezvous.transport.topics import apply_topics

    settings = Settings().model_copy(
        update={"topic_prefix": f"b{uuid.uuid4().hex[:6]}embedded."})
    apply_topics(settings)
    n = len(rows)
    with Embedded(archive=archive, archive_roll_s=1.0, kafka=settings) as embedded:
        on = _measure(f"single row at {rate:,.0f}/s, archive and publishing on", calls, 1,
                      lambda i: [embedded.score(rows[i % n])], rate)
    stats = embedded.stats()
    made = calls + WARM_UP + 1
    if (stats.published, stats.publish_dropped, stats.archive_dropped) != (made, 0, 0):
        raise AssertionError(f"published {stats.published} of {made} decisions, "
                             f"{stats.publish_dropped} not, {stats.archive_dropped} rows "
                             "not archived")
    return Measured(**{**on.__dict__,
                       "note": f"drops 0, {stats.published:,} decisions delivered"})


def to_markdown(found: list[Measured], rate: float) -> str:
    lines = [
        "## Embedded",
        "",
        f"`{COMMAND}` — `rendezvous.Embedded` in one process, bundled models, default "
        "policy; one caller thread. Latency is the caller's wall time per call; rows per "
        "CPU-second counts the CPU of every thread (callers, models, archive). The Kafka "
        f"pipeline at the same rate: section `pipeline` (Python {platform.python_version()}, "
        f"{platform.machine()}).",
        "",
        "| scenario | calls | p50 µs | p99 µs | rows/s (wall) | rows per CPU-s | results |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for m in found:
        results = ", ".join(f"{k} {v:,}" for k, v in sorted(m.statuses.items()))
        if m.note:
            results += f"; {m.note}"
        lines.append(f"| {m.name} | {m.calls:,} | {m.p50_us:,.0f} | {m.p99_us:,.0f} | "
                     f"{m.rows / m.wall_s:,.0f} | {m.rows / max(m.cpu_s, 1e-9):,.0f} | "
                     f"{results} |")
    off = next(m for m in found if m.name.endswith("archive off"))
    lines.append("")
    for m in found:
        if m.name.endswith(" on"):
            what = m.name.rsplit(", ", 1)[1].removesuffix(" on")
            lines.append(f"With {what} on at {rate:,.0f}/s, `score`'s p50 changes by "
                         f"{(m.p50_us / off.p50_us - 1) * 100:+.1f} % (goal: at most +10 %).")
    lines.append("")
    return "\n".join(lines)


def run(calls: int = CALLS, batches: int = BATCHES, rate: float = RATE) -> str:
    """Measure every scenario and return the Markdown section."""
    return to_markdown(measure(calls, batches, rate), rate)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=CALLS, help="single-row calls per scenario")
    parser.add_argument("--batches", type=int, default=BATCHES, help="batch calls")
    parser.add_argument("--rate", type=float, default=RATE,
                        help="calls per second of the archive off/on scenarios")
    args = parser.parse_args()
    sys.stdout.write(run(args.calls, args.batches, args.rate))
