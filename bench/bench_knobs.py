"""Latency knobs: the default pipeline at one rate, with each hot-path Kafka knob varied.

    python bench/bench_knobs.py [--rate 2000] [--rounds 2] [--seconds 10] [--only TEXT]

The hot path's Kafka settings (``RENDEZVOUS_KAFKA__FETCH_WAIT_MAX_MS``,
``RENDEZVOUS_KAFKA__FETCH_MIN_BYTES``, ``RENDEZVOUS_KAFKA__LINGER_MS``) trade latency per hop
against requests to the broker, i.e. CPU on a small machine. Each configuration
is the default pipeline (decoy and monitor on) started with one knob changed
through its environment variable (the load generator and the reader get the
same settings); configurations take turns round by round, because this
machine's noise drifts over minutes and a whole block of runs of one
configuration would measure the drift. Per run: the share received within the
deadline, p50, p99 and the CPU of the pipeline's processes and the broker.
``run()`` returns the Markdown section.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

from bench_pipeline import TARGET, measure_with_cpu, start, warm_up
from common import progress, section
from measure import DEADLINE_MS, RateResult
from rendezvous.demo.signals import run_interruptibly
from rendezvous.local.supervisor import Supervisor
from rendezvous.settings import Settings
from scratch import scratch

CONFIGS: dict[str, dict[str, str]] = {
    "defaults: fetch wait 8 ms, fetch min 64 KiB, linger 2 ms": {},
    "fetch wait 3 ms": {"RENDEZVOUS_KAFKA__FETCH_WAIT_MAX_MS": "3"},
    "fetch min 1 byte": {"RENDEZVOUS_KAFKA__FETCH_MIN_BYTES": "1"},
    "linger 0 ms": {"RENDEZVOUS_KAFKA__LINGER_MS": "0"},
    "linger 5 ms (librdkafka's default)": {"RENDEZVOUS_KAFKA__LINGER_MS": "5"},
}
RATE = 2000.0
ROUNDS = 2
RUNS = 2
"""Measured runs per configuration and round."""
SECONDS = 10.0
WARM_UP_S = 10.0
COMMAND = "python bench/bench_knobs.py"


_log = progress("knobs")


def measure(tmp: Path, rate: float, rounds: int, seconds: float,
            configs: dict[str, dict[str, str]]) -> dict[str, list[RateResult]]:
    """Every configuration's runs, configurations taking turns round by round."""
    runs: dict[str, list[RateResult]] = {name: [] for name in configs}
    with scratch("bench-knobs", _log) as stack:
        first = True
        for round_no in range(rounds):
            for index, (name, env) in enumerate(configs.items()):
                # the knob, for every process started (and the load generator's clients)
                with mock.patch.dict(os.environ, env):
                    runs[name] += measure_pipeline(stack.settings(Settings()),
                                                   tmp / f"{round_no}-{index}", name, rate,
                                                   seconds, fresh_broker=first, log=_log)
                first = False
    return runs


def measure_pipeline(base: Settings, work: Path, name: str, rate: float, seconds: float,
                     fresh_broker: bool, log: Callable[[str], None]) -> list[RateResult]:
    """Start the default pipeline on ``base``'s stack, warm it up, measure :data:`RUNS`
    runs (each logged as ``name``'s), stop it."""
    results: list[RateResult] = []
    supervisors: list[Supervisor] = []
    try:
        settings = start("pipeline", base, work, supervisors)
        warm_up(settings, rate, WARM_UP_S, fresh_broker)
        for _ in range(RUNS):
            result = measure_with_cpu(settings, supervisors[-1], rate, seconds)
            results.append(result)
            log(f"{name[:30]:30} {result.line()}")
            time.sleep(1.0)
    finally:
        for sup in supervisors:
            sup.stop_all()
    return results


def to_markdown(runs: dict[str, list[RateResult]], rate: float, seconds: float) -> str:
    return section(
        "Latency knobs of the hot path",
        f"Command: `{COMMAND}`. The default pipeline (decoy and monitor on) at {rate:,.0f} "
        f"requests/s, {seconds:g} s per run, deadline {DEADLINE_MS:g} ms, with one knob "
        "changed per configuration (its environment variable, for every process including "
        "the load generator and the reader); configurations take turns, "
        f"{RUNS} runs each per round. **cpu** = the pipeline's processes and the broker, "
        "in % of one core. The defaults are the first row.",
        table(runs),
    )


def table(runs: dict[str, list[RateResult]], broker: bool = False) -> list[str]:
    """One row per configuration: each run's share within the deadline, medians, CPU (with
    ``broker``, the broker's own share too)."""
    broker_head, broker_rule = ("| broker cpu % (mean) ", "---:|") if broker else ("", "")
    lines = [
        "| configuration | runs | within 50 ms, each run | runs >= 99.9 % | median p50 ms "
        f"| median p99 ms {broker_head}| cpu % (mean) | load |",
        f"|---|---:|---|---:|---:|---:|{broker_rule}---:|---:|",
    ]
    for name, results in runs.items():
        if not results:
            continue
        within = ", ".join(f"{r.adherence * 100:.2f} %" for r in results)
        passing = sum(r.adherence >= TARGET for r in results)
        p50 = statistics.median(r.p50_ms for r in results)
        p99 = statistics.median(r.p99_ms for r in results)
        cpu = statistics.mean(100 * sum(r.cpu_s.values()) / r.seconds for r in results)
        load = statistics.mean(r.load for r in results)
        own = ""
        if broker:
            share = statistics.mean(100 * r.cpu_s.get("broker", 0.0) / r.seconds for r in results)
            own = f"{share:.0f} | "
        lines.append(f"| {name} | {len(results)} | {within} | {passing} | {p50:.1f} | "
                     f"{p99:.1f} | {own}{cpu:.0f} | {load:.1f} |")
    return lines


def chosen(only: list[str] | None) -> dict[str, dict[str, str]]:
    """The defaults and every configuration whose name contains one of ``only`` (all
    without it)."""
    return {name: env for index, (name, env) in enumerate(CONFIGS.items())
            if not only or index == 0 or any(text in name for text in only)}


def run(rate: float = RATE, rounds: int = ROUNDS, seconds: float = SECONDS,
        only: list[str] | None = None) -> str:
    with tempfile.TemporaryDirectory(prefix="bench-knobs-") as tmp:
        return to_markdown(measure(Path(tmp), rate, rounds, seconds, chosen(only)),
                           rate, seconds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=RATE)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--only", action="append", metavar="TEXT",
                        help="only the defaults and configurations whose name contains "
                             "TEXT (repeatable), e.g. --only linger")
    args = parser.parse_args(argv)
    unknown = [text for text in args.only or [] if not any(text in name for name in CONFIGS)]
    if unknown:
        parser.error(f"no configuration's name contains {', '.join(map(repr, unknown))}; "
                     f"the configurations: {'; '.join(CONFIGS)}")
    print(run(args.rate, args.rounds, args.seconds, args.only))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(run_interruptibly(main))
