"""Decoy, replay and backtest throughput against a real broker.

    python bench/bench_decoy.py

Pre-fills the input topic with N input events (~450 bytes, JSON, list
features) and the decisions topic with one Decision each, then measures, in
one process pinned to one CPU:

- a plain consume loop over both topics (no writing): the ceiling;
- the decoy recorder (same consumer settings) writing the Parquet archive with
  its defaults (64 MiB rolls, zstd, fsync + rename), ending with the final
  roll and commit; reported as records/s, MB/s and a ratio to the ceiling;
- replay of the archived inputs into a fresh topic (``--max``);
- backtest of the primary model against the recorded decisions.

Needs a broker: ``KAFKA_BOOTSTRAP_SERVERS`` when set, else it starts
``rendezvous.local`` in a temporary directory and stops it afterwards.
``run()`` returns the Markdown section for ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

import msgspec
import numpy as np

from common import section
from rendezvous.backtest import BacktestConfig, backtest
from rendezvous.decoy import DecoyConfig, Recorder
from rendezvous.demo.signals import run_interruptibly
from rendezvous.messages import Candidate, Decision, encode
from rendezvous.model import load_dataset, load_model, resolve_model
from rendezvous.replay import ReplayConfig, replay
from rendezvous.settings import Settings
from rendezvous.transport.clients import (
    flush_or_raise,
    make_consumer,
    make_producer,
    poll_batch,
    produce,
)
from scratch import scratch_settings

N = 200_000
COMMAND = "python bench/bench_decoy.py"


def _pin_one_cpu() -> str:
    """Pin this process (and the client threads it starts later) to one CPU."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def _prefill(settings: Settings) -> tuple[int, int, int]:
    """N inputs and N decisions; returns (records, payload bytes over both topics,
    input value bytes)."""
    data = load_dataset()
    primary = load_model(resolve_model(settings.models_dir, "primary"))
    canary = load_model(resolve_model(settings.models_dir, "canary"))
    p_scores, c_scores = primary.predict(data.X).scores, canary.predict(data.X).scores
    rows = np.random.default_rng(0).integers(0, len(data.X), size=N)
    features = [[float(f"{v:.9g}") for v in row] for row in data.X.tolist()]
    encoder = msgspec.json.Encoder()
    producer = make_producer(settings, **{"linger.ms": 20})
    total = inputs = 0
    now = time.time() * 1000
    for i, row in enumerate(rows.tolist()):
        rid = f"bench-{i:08d}"
        event = {"id": rid, "features": features[row], "deadline_ms": 50.0, "ts": now}
        value = encoder.encode(event)
        inputs += len(value)
        decision = encode(Decision(id=rid, status="ok", chosen="primary", deadline_ms=now + 50,
                                   decided_ms=now + 9, ts=now, candidates=[
                                       Candidate("primary", "1", float(p_scores[row]), 9.0, True),
                                       Candidate("canary", "1", float(c_scores[row]), 2.0, True)]))
        for topic, payload in (("input", value), ("decisions", decision)):
            produce(producer, settings.topic(topic), payload, rid.encode())
            total += len(payload) + len(rid)
        if i % 1000 == 0:
            producer.poll(0)
    flush_or_raise(producer, 120)
    return 2 * N, total, inputs


def _baseline(settings: Settings, records: int) -> float:
    """Seconds for a plain consume loop to read ``records`` (first record to last)."""
    consumer = make_consumer(settings, settings.group(f"baseline-{uuid.uuid4().hex[:6]}"))
    consumer.subscribe([settings.topic("input"), settings.topic("decisions")])
    seen, started = 0, None
    while seen < records:
        batch = poll_batch(consumer, 10_000, 0.2)
        if batch and started is None:
            started = time.perf_counter()
        seen += len(batch)
    seconds = time.perf_counter() - (started or 0.0)
    consumer.close()
    return seconds


def _decoy(settings: Settings, archive: Path, records: int) -> float:
    """Seconds for the decoy to archive ``records``, final roll and commit included."""
    recorder = Recorder(settings, DecoyConfig(archive=archive))
    recorder.start()
    started = None
    while recorder.records_seen < records:
        if recorder.step() and started is None:
            started = time.perf_counter()
    recorder.roll_and_commit()
    seconds = time.perf_counter() - (started or 0.0)
    recorder.close(commit=False)
    return seconds


def measure(settings: Settings, workdir: Path) -> dict[str, object]:
    records, payload, input_bytes = _prefill(settings)
    baseline_s = _baseline(settings, records)
    archive = workdir / "archive"
    decoy_s = _decoy(settings, archive, records)
    archive_bytes = sum(p.stat().st_size for p in archive.rglob("*.parquet"))
    started = time.perf_counter()
    replayed = replay(settings, ReplayConfig(archive=archive, topic=settings.topic("replay"),
                                             progress=False))
    replay_total_s = time.perf_counter() - started
    model = load_model(resolve_model(settings.models_dir, "primary"))
    result = backtest(model, BacktestConfig(archive=archive, report=workdir / "report",
                                            against="primary"))
    return {
        "records": records, "payload": payload, "input_bytes": input_bytes,
        "baseline_s": baseline_s, "decoy_s": decoy_s,
        "archive_bytes": archive_bytes, "files": len(list(archive.rglob("*.parquet"))),
        "replay_records": replayed.records, "replay_s": replayed.seconds,
        "replay_total_s": replay_total_s, "backtest": result.summary,
    }


def to_markdown(r: dict, broker: str, pinned: str) -> str:
    records, payload = int(r["records"]), int(r["payload"])
    mb = payload / 1e6
    base_s, decoy_s = float(r["baseline_s"]), float(r["decoy_s"])
    bt = r["backtest"]
    replay_n, replay_s = int(r["replay_records"]), float(r["replay_s"])
    return section(
        "Decoy, replay, backtest",
        f"Command: `{COMMAND}`",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; bench process {pinned}; broker: {broker}. "
        f"{records:,} records pre-filled: {records // 2:,} input events (mean "
        f"{int(r['input_bytes']) / (records // 2):,.0f} bytes) and one Decision each (mean "
        f"{payload / records:,.0f} bytes of key + value over both topics). "
        "Decoy with its defaults (64 MiB rolls, zstd, fsync + rename, commit "
        "after each roll); times run from the first record polled to the last one durable "
        "and committed.",
        ["| stage | records | seconds | records/s | MB/s | note |",
        "|---|---:|---:|---:|---:|---|",
        f"| plain consume loop (ceiling) | {records:,} | {base_s:.2f} | {records / base_s:,.0f} "
        f"| {mb / base_s:.1f} | no writing |",
        f"| decoy (archive) | {records:,} | {decoy_s:.2f} | {records / decoy_s:,.0f} "
        f"| {mb / decoy_s:.1f} | {base_s / decoy_s:.2f} of the ceiling; {r['files']} files, "
        f"{int(r['archive_bytes']) / 1e6:.1f} MB on disk |",
        f"| replay `--max` | {replay_n:,} | {replay_s:.2f} | {replay_n / replay_s:,.0f} | | "
        f"{float(r['replay_total_s']):.2f} s with reading the archive |",
        f"| backtest primary vs recorded | {bt['rows']:,} | {bt['seconds']:.2f} "
        f"| {bt['rows_per_s']:,.0f} | | decode + score rows/s; {bt['rows'] / bt['seconds']:,.0f} "
        "rows/s end to end (read, score, join, report) |"],
    )


def run() -> str:
    """Run the benchmark (starting a local broker if none is given) and return its section."""
    pinned = _pin_one_cpu()
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    with tempfile.TemporaryDirectory(prefix="bench-decoy-") as tmp, \
            scratch_settings("bench") as settings:
        results = measure(settings, Path(tmp))
    broker = "KAFKA_BOOTSTRAP_SERVERS" if given else "rendezvous.local (KRaft)"
    return to_markdown(results, broker, pinned)


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args()
    sys.exit(run_interruptibly(lambda: print(run())))
