"""How long ``rendezvous inspect ID`` takes on a big topic and a big archive.

    python bench/bench_inspect.py                                # 10 M records, 1 GiB
    python bench/bench_inspect.py --records 20000 --archive-mib 8  # a smoke run

Builds, on a real broker, an input topic of ``--records`` input events whose record
times are spread evenly over ``--span-hours`` ending now (a pipeline's week, not one
burst: ``inspect`` reads a time range, and an hour of it is what it reads by default),
with one request's score, result and decision on the co-partitioned topics; and a raw
archive of about ``--archive-mib`` MiB of Parquet in the decoy's layout (hour
directories, row groups of the decoy's size, zstd) over the same span. Then times
``inspect`` of that one request (which sits half an hour back) from each, in process,
``--repeat`` times, and reports the median and the records in the hour searched.
The target is under 2 s for either.

Needs a broker: ``KAFKA_BOOTSTRAP_SERVERS`` when set, else it starts
``rendezvous.local`` in a temporary directory. ``run()`` returns the Markdown section
for ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from confluent_kafka import Producer

from rendezvous.archive.layout import HOUR_MS, file_name, hour_directory
from rendezvous.archive.schema import ARCHIVE_SCHEMA, SCHEMA_VERSION
from rendezvous.decoy.writer import ROW_GROUP_ROWS
from rendezvous.demo.signals import run_interruptibly
from rendezvous.inspect import Inspection, inspect_request
from rendezvous.inspect.parts import Story
from rendezvous.inspect.window import window
from rendezvous.messages import Candidate, Decision, Score, Scored, encode
from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise, make_producer, produce
from scratch import scratch_settings

RECORDS = 10_000_000
ARCHIVE_MIB = 1024
SPAN_HOURS = 72.0
"""Within the input topic's 7-day retention (records older than it would be deleted)."""
TARGET_AGO_MS = 30 * 60_000
FEATURES = 30
FILE_ROWS = 50 * ROW_GROUP_ROWS
"""Rows of one archive file at most (the decoy rolls at 64 MiB or every minute)."""
TARGET = 2.0
COMMAND = "python bench/bench_inspect.py"

Say = Callable[[str], None]


def _event(rid: str, values: np.ndarray, ts: float) -> bytes:
    features = ",".join(f"{v:.4f}" for v in values)
    return (f'{{"id":"{rid}","features":[{features}],"deadline_ms":50,"ts":{ts:.0f}}}'
            .encode())


def _times(n: int, now_ms: int, span_hours: float) -> np.ndarray:
    return np.linspace(now_ms - span_hours * HOUR_MS, now_ms - 1, n).astype(np.int64)


def build_topic(settings: Settings, n: int, now_ms: int, span_hours: float, target: str,
                say: Say = print) -> tuple[int, int]:
    """Fill the input topic (the target half an hour back); returns (records, partition of
    the target)."""
    producer = make_producer(settings, **{"linger.ms": 50, "batch.size": 1_000_000,
                                          "compression.type": "zstd"})
    topic, rng = settings.topic("input"), np.random.default_rng(7)
    times = _times(n, now_ms, span_hours)
    at = int(np.searchsorted(times, now_ms - TARGET_AGO_MS))
    partition = 1
    values = rng.random((1000, FEATURES)) * 100
    for i, ts in enumerate(times.tolist()):
        rid = target if i == at else f"bench-{i}"
        produce(producer, topic, _event(rid, values[i % 1000], ts), rid.encode(),
                partition=partition if i == at else i % 4, timestamp=ts)
        if i % 200_000 == 0 and i:
            producer.poll(0)
            say(f"produced {i:,} of {n:,}")
    target_ts = int(times[at])
    _follow_ups(settings, producer, target, target_ts, partition)
    flush_or_raise(producer, 600)
    return n, partition


def _follow_ups(settings: Settings, producer: Producer, rid: str, ts: int, partition: int
                ) -> None:
    """The target's answers, result and decision, where serve would have put them."""
    decided = ts + 40.0
    records = [
        ("scores", Score(rid, "canary", "1", "ok", 0.91, 1, ts + 2.0, ts + 3.0), ts + 3),
        ("scores", Score(rid, "primary", "1", "ok", 0.88, 1, ts + 2.0, ts + 52.0), ts + 52),
        ("decisions", Decision(rid, "fallback", "canary", [
            Candidate("canary", "1", 0.91, 3.0, True, service_ms=1.0)], ts + 40.0, decided,
            float(ts), "reference:canary/1->primary/1", version="1"), ts + 40),
        ("scored", Scored(rid, "fallback", 0.87, 1, "canary", "1", 40.0, ["canary"],
                          "primary: no answer by deadline", decided, 0.91), ts + 40),
    ]
    for logical, message, at in records:
        producer.produce(settings.topic(logical), encode(message), rid.encode(),
                         partition=partition, timestamp=int(at))


def _archive_table(ids: list[str], times: np.ndarray, first: int, values: np.ndarray
                   ) -> pa.Table:
    n = len(ids)
    return pa.table({
        "schema_version": pa.array([SCHEMA_VERSION] * n, pa.int16()),
        "topic": pa.array(["input"] * n),
        "partition": pa.array([1] * n, pa.int32()),
        "offset": pa.array(np.arange(first, first + n), pa.int64()),
        "key": pa.array([i.encode() for i in ids], pa.binary()),
        "value": pa.array([_event(i, values[(first + j) % len(values)], float(t))
                           for j, (i, t) in enumerate(zip(ids, times.tolist(), strict=True))],
                          pa.binary()),
        "headers": pa.nulls(n, ARCHIVE_SCHEMA.field("headers").type),
        "timestamp_ms": pa.array(times, pa.int64()),
        "timestamp_type": pa.array([1] * n, pa.int8()),
        "arrival_ms": pa.array(times + 5, pa.int64()),
    }, schema=ARCHIVE_SCHEMA)


def _bytes_per_row(values: np.ndarray, now_ms: int) -> float:
    """What one row takes in a file, measured on a row group's worth."""
    times = np.full(ROW_GROUP_ROWS, now_ms, dtype=np.int64)
    sample = _archive_table([f"bench-{i}" for i in range(ROW_GROUP_ROWS)], times, 0, values)
    sink = pa.BufferOutputStream()
    pq.write_table(sample, sink, compression="zstd", row_group_size=ROW_GROUP_ROWS)
    return sink.getvalue().size / ROW_GROUP_ROWS


def build_archive(root: Path, mib: int, now_ms: int, span_hours: float, target: str,
                  say: Say = print) -> tuple[int, int]:
    """Parquet files of about ``mib`` MiB in the decoy's layout, one file per hour
    directory and ``FILE_ROWS`` rows at most; returns (rows, bytes)."""
    values = np.random.default_rng(8).random((1000, FEATURES)) * 100
    n = max(ROW_GROUP_ROWS, int(mib * 2**20 / _bytes_per_row(values, now_ms)))
    times = _times(n, now_ms, span_hours)
    at = int(np.searchsorted(times, now_ms - TARGET_AGO_MS))
    written = start = 0
    while start < n:
        hour = int(times[start]) // HOUR_MS
        chunk = times[start:start + FILE_ROWS]
        chunk = chunk[chunk // HOUR_MS == hour]  # a file never spans two hours
        ids = [target if start + j == at else f"bench-{start + j}" for j in range(len(chunk))]
        directory = hour_directory(root, "input", hour)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / file_name(1, start)
        pq.write_table(_archive_table(ids, chunk, start, values), path, compression="zstd",
                       row_group_size=ROW_GROUP_ROWS)
        written += path.stat().st_size
        start += len(chunk)
        if start // FILE_ROWS != (start - len(chunk)) // FILE_ROWS and start // FILE_ROWS % 20 == 0:
            say(f"archived {start:,} of {n:,} rows, {written / 2**20:,.0f} MiB")
    return n, written


def _median_s(call: Callable[[], Inspection], repeat: int, complete: Callable[[Story], bool]
              ) -> tuple[float, int]:
    """The median time of ``call``, and how many of its stories are ``complete``."""
    times, found = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        done = call()
        times.append(time.perf_counter() - started)
        found = sum(map(complete, done.stories))
    return statistics.median(times), found


def measure(settings: Settings, tmp: Path, records: int, archive_mib: int,
            span_hours: float, repeat: int, say: Say = print) -> dict[str, float]:
    now_ms = int(time.time() * 1000)
    target = f"target-{uuid.uuid4().hex[:12]}"
    say(f"building the input topic: {records:,} records over {span_hours:g} h")
    build_topic(settings, records, now_ms, span_hours, target, say)
    say(f"building the archive: ~{archive_mib:,} MiB over {span_hours:g} h")
    rows, size = build_archive(tmp / "archive", archive_mib, now_ms, span_hours, target, say)
    span = window(None, None)
    topic_s, topic_found = _median_s(lambda: inspect_request(settings, target, span), repeat,
                                     lambda story: story.decision is not None)
    archive_s, archive_found = _median_s(
        lambda: inspect_request(settings, target, span, tmp / "archive"), repeat,
        lambda story: story.input is not None)  # the archive built holds inputs only
    if not topic_found or not archive_found:
        raise RuntimeError(f"inspect did not find {target} (topic {topic_found}, archive "
                           f"{archive_found})")
    per_hour = records / span_hours
    return {"records": records, "span_hours": span_hours, "records_per_hour": per_hour,
            "topic_s": topic_s, "archive_rows": rows, "archive_bytes": size,
            "archive_rows_per_hour": rows / span_hours, "archive_s": archive_s,
            "repeat": repeat}


def to_markdown(r: dict[str, float]) -> str:
    def verdict(seconds: float) -> str:
        return "meets" if seconds < TARGET else "MISSES"

    return "\n".join([
        "## inspect",
        "",
        f"`{COMMAND}`: the time `rendezvous inspect ID` takes, in process (median of "
        f"{r['repeat']:.0f}), for one request half an hour back, with the default window "
        "(the last hour). Target: under 2 s.",
        "",
        "| source | size | records in the hour read | median | target |",
        "|---|---|---|---|---|",
        f"| input topic (4 partitions, every one read) | {r['records']:,.0f} records over "
        f"{r['span_hours']:g} h | {r['records_per_hour']:,.0f} | {r['topic_s']:.2f} s | "
        f"{verdict(r['topic_s'])} |",
        f"| archive (Parquet, decoy layout) | {r['archive_bytes'] / 2**20:,.0f} MiB, "
        f"{r['archive_rows']:,.0f} rows over {r['span_hours']:g} h | "
        f"{r['archive_rows_per_hour']:,.0f} | {r['archive_s']:.2f} s | "
        f"{verdict(r['archive_s'])} |",
        "",
        "Only the hour's records are read: the topic from `offsets_for_times` at the "
        "window's start to its end on every partition, the archive's hour directories "
        "and, in them, the key column of each row group (whole row groups only where the "
        "key matches). A window of a day reads 24 times as much.",
        "",
    ])


def run(records: int = RECORDS, archive_mib: int = ARCHIVE_MIB, span_hours: float = SPAN_HOURS,
        repeat: int = 3) -> str:
    """Build, measure, and return the section for ``docs/benchmarks.md``."""
    def say(text: str) -> None:
        print(f"[inspect] {text}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-inspect-") as tmp, \
            scratch_settings("bench") as settings:
        return to_markdown(measure(settings, Path(tmp), records, archive_mib, span_hours,
                                   repeat, say))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=RECORDS,
                        help="input records in the topic (default %(default)s)")
    parser.add_argument("--archive-mib", type=int, default=ARCHIVE_MIB,
                        help="archive size in MiB (default %(default)s)")
    parser.add_argument("--span-hours", type=float, default=SPAN_HOURS,
                        help="hours the records span, ending now (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (median)")
    args = parser.parse_args()
    sys.exit(run_interruptibly(lambda: print(run(args.records, args.archive_mib,
                                                 args.span_hours, args.repeat))))


if __name__ == "__main__":
    main()
