"""Deadline benchmark: the default pipeline against the bare relay, at fixed rates.

    python bench/bench_deadline.py [--rates 1000,2000] [--repeats 3] [--seconds 10]

The acceptance of "answers inside the deadline": on one broker, one system at a
time, the **default** pipeline (primary and canary workers, ``serve`` in its
default mode, decoy and monitor on: they are part of production) and the bare
relay (:mod:`relay`: the same topology, no logic) each take a warm-up run, then
``--repeats`` open-loop runs per rate (``measure_rate`` of ``bench/measure.py``:
latency from each request's scheduled send time to the moment the reader
received its result; a missing result counts as a miss). Then, with the
pipeline still under open-loop load, the synchronous path: ``Client.score()``
round trips (produce, decide, Redis reply). The relay's figures are kept for
``rendezvous demo`` (:mod:`rendezvous.demo.relay_baseline`). ``run()`` returns the
Markdown section.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import bench_gateway
from bench_pipeline import LABELS, measure_with_cpu, start, warm_up
from common import markdown_table, progress, section
from measure import DEADLINE_MS, RateResult, latency_stats, measure_rate
from rendezvous.client import Client
from rendezvous.demo.relay_baseline import record_relay
from rendezvous.demo.signals import run_interruptibly
from rendezvous.local.supervisor import Supervisor
from rendezvous.model import sample_events
from rendezvous.settings import Settings
from scratch import scratch

RATES = (1000, 2000)
REPEATS = 3
SECONDS = 10.0
WARM_UP_S = 30.0
"""Before the first system: a fresh broker's JIT makes its first ~10 s slow for anyone."""
TARGET = 0.999
CLIENT_RATE = 50.0
"""Synchronous ``Client.score()`` calls per second, one after the other, beside the load."""
COMMAND = "make bench  (or: python bench/bench_deadline.py)"


_log = progress("deadline")


def client_round_trips(settings: Settings, seconds: float) -> list[float]:
    """``Client.score()`` round trips (ms), paced at CLIENT_RATE; a timeout counts as inf."""
    events = sample_events(200, seed=11)
    out: list[float] = []
    with Client(settings) as client:
        client.score(events[0]["features"], timeout_s=5.0)  # warm: producer, subscription
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            due = time.perf_counter() + 1.0 / CLIENT_RATE
            started = time.perf_counter()
            try:
                client.score(events[i % len(events)]["features"], timeout_s=1.0)
                out.append((time.perf_counter() - started) * 1000.0)
            except TimeoutError:
                out.append(float("inf"))
            i += 1
            time.sleep(max(0.0, due - time.perf_counter()))
    return out


def measure(base: Settings, tmp: Path, rates: tuple[float, ...], repeats: int,
            seconds: float) -> tuple[dict[str, list[RateResult]], list[float], str]:
    """The runs of both systems, the client's round trips and the gateway's section."""
    runs: dict[str, list[RateResult]] = {"relay": [], "pipeline": []}
    trips: list[float] = []
    gateway = ""
    for system in runs:  # one system's processes at a time: idle ones cost CPU too
        supervisors: list[Supervisor] = []
        try:
            settings = start(system, base, tmp, supervisors)
            first = system == next(iter(runs))
            warm = warm_up(settings, rates[0], WARM_UP_S, first)
            _log(f"{LABELS[system]:10} warm-up {warm.line()}")
            for rate in rates:
                for _ in range(repeats):
                    result = measure_with_cpu(settings, supervisors[-1], rate, seconds)
                    runs[system].append(result)
                    _log(f"{LABELS[system]:10} {result.line()}")
                    time.sleep(1.0)
            if system == "pipeline":
                load = threading.Thread(target=measure_rate, args=(settings, rates[0], seconds))
                load.start()
                trips = client_round_trips(settings, seconds - 1.0)
                load.join()
                gateway = bench_gateway.run(settings, seconds=seconds)
        finally:
            for sup in supervisors:
                sup.stop_all()
    return runs, trips, gateway


def _ms(value: float) -> str:
    return f"{value:,.1f}" if value == value and value != float("inf") else "-"


def _row(system: str, r: RateResult) -> tuple[str, ...]:
    cpu = ", ".join(f"{name} {100 * s / r.seconds:.0f}" for name, s in sorted(
        r.cpu_s.items(), key=lambda kv: -kv[1]))
    return (LABELS[system], f"{r.rate:,.0f}", f"{r.sent:,}", f"{r.missing:,}",
            f"{r.duplicates:,}", _ms(r.p50_ms), _ms(r.p99_ms), _ms(r.p999_ms), _ms(r.max_ms),
            f"{r.adherence * 100:.2f} %", f"{r.load:.1f}", cpu)


def _verdict(rate: float, mine: list[RateResult], relay: list[RateResult]) -> tuple[str, ...]:
    worst = min(r.adherence for r in mine)
    p99, relay_p99 = (statistics.median(r.p99_ms for r in rs) for rs in (mine, relay))
    lost, dup = sum(r.missing for r in mine), sum(r.duplicates for r in mine)
    met = worst >= TARGET and p99 <= 2 * relay_p99 and not lost and not dup
    return (f"{rate:,.0f}", f"{worst * 100:.2f} %", f"{p99:,.1f}", f"{relay_p99:,.1f}",
            f"{p99 / relay_p99:.2f}", str(lost), str(dup), "yes" if met else "**no**")


def to_markdown(runs: dict[str, list[RateResult]], trips: list[float],
                rates: tuple[float, ...], seconds: float) -> str:
    by_rate = [([r for r in runs["pipeline"] if r.rate == rate],
                [r for r in runs["relay"] if r.rate == rate], rate) for rate in rates]
    blocks: list[str | list[str]] = [
        f"Command: `{COMMAND}`. One broker, one system at a time, each after a "
        f"{WARM_UP_S:g} s warm-up: the **default** pipeline (workers, `serve` default mode, "
        "decoy and monitor on) and the bare relay (same topology, no logic). Open-loop load, "
        f"{seconds:g} s per run, deadline {DEADLINE_MS:g} ms; latency = scheduled send -> "
        "result received by the reader (a missing result is a miss). **cpu %** = share of "
        "one core per process during the run (broker included). Target: >= 99.9 % within "
        "the deadline, p99 <= 2x the relay's, 0 lost, 0 duplicated.",
        markdown_table(
            "| system | rate /s | sent | lost | dup | p50 ms | p99 ms | p99.9 ms | max ms | "
            "within 50 ms | load | cpu % |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
            [_row(system, r) for system in ("pipeline", "relay") for r in runs[system]]),
        markdown_table(
            "| rate /s | pipeline worst within | pipeline median p99 ms | relay median "
            "p99 ms | p99 ratio | lost | dup | target met |",
            "|---:|---:|---:|---:|---:|---:|---:|---|",
            [_verdict(rate, mine, relay) for mine, relay, rate in by_rate if mine and relay]),
    ]
    if trips:
        stats = latency_stats([t for t in trips if t != float("inf")], DEADLINE_MS)
        within = sum(1 for t in trips if t <= DEADLINE_MS) / len(trips)
        blocks.append(f"Synchronous path, `Client.score()` at {CLIENT_RATE:g}/s one after the "
                      f"other while the pipeline takes {rates[0]:,.0f}/s open-loop: "
                      f"{len(trips):,} calls, p50 {stats['p50_ms']:.1f} ms, p99 "
                      f"{stats['p99_ms']:.1f} ms, {within * 100:.2f} % within {DEADLINE_MS:g} ms "
                      "(produce -> decide -> Redis reply -> caller).")
    return section("Deadline: default pipeline vs bare relay", *blocks)


def run(rates: tuple[float, ...] = RATES, repeats: int = REPEATS,
        seconds: float = SECONDS) -> str:
    """Measure on the stack of the environment (or a local one) and return the section."""
    with (scratch("bench-deadline", _log) as stack,
          tempfile.TemporaryDirectory(prefix="bench-deadline-") as tmp):
        runs, trips, gateway = measure(stack.settings(Settings()), Path(tmp), rates, repeats,
                                       seconds)
    relay = [r for r in runs["relay"] if r.rate == max(rates)]
    if relay:
        record_relay(Settings(), max(rates), min(r.adherence for r in relay),
                     statistics.median(r.p99_ms for r in relay))
    return to_markdown(runs, trips, rates, seconds) + "\n" + gateway


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default=",".join(str(r) for r in RATES))
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--seconds", type=float, default=SECONDS)
    args = parser.parse_args(argv)
    rates = tuple(float(r) for r in args.rates.split(","))
    print(run(rates, args.repeats, args.seconds))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(run_interruptibly(main))
