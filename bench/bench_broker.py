"""The local broker's request threads, measured through the default pipeline.

    python bench/bench_broker.py [--rate 2000] [--rounds 3] [--seconds 10]

On a small machine the broker is the largest user of CPU (about half a core at
2,000 requests/s), much of it in the kernel switching between its threads: every
request goes from a network thread to an I/O thread and back. One configuration
(``RENDEZVOUS_LOCAL__NETWORK_THREADS`` and ``RENDEZVOUS_LOCAL__IO_THREADS``) at a
time gets a local broker and Redis of its own, started for the round and stopped
after it, and the default pipeline (decoy and monitor on) on them; configurations
take turns round by round, like :mod:`bench_knobs`. In ``make bench`` the shared broker of
the other sections stays up meanwhile, idle. ``run()`` returns the Markdown section.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from unittest import mock

from bench_knobs import RUNS, measure_pipeline, table
from common import progress, section
from measure import DEADLINE_MS, RateResult
from rendezvous.demo.signals import run_interruptibly
from rendezvous.demo.stack import lease
from rendezvous.settings import Settings

CONFIGS: dict[str, dict[str, str]] = {
    "defaults: 1 network thread, 2 I/O threads": {},
    "2 network, 4 I/O threads (before)": {"RENDEZVOUS_LOCAL__NETWORK_THREADS": "2",
                                           "RENDEZVOUS_LOCAL__IO_THREADS": "4"},
    "1 network, 1 I/O thread": {"RENDEZVOUS_LOCAL__IO_THREADS": "1"},
}
RATE = 2000.0
ROUNDS = 3
SECONDS = 10.0
COMMAND = "python bench/bench_broker.py"
STACK_ENV = ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "BENCH_KAFKA_PID")
"""The shared stack ``bench/run.py`` hands to every section: not this one's."""


_log = progress("broker")


def measure(tmp: Path, rate: float, rounds: int, seconds: float) -> dict[str, list[RateResult]]:
    """Every configuration's runs, configurations taking turns round by round."""
    runs: dict[str, list[RateResult]] = {name: [] for name in CONFIGS}
    for round_no in range(rounds):
        for index, (name, env) in enumerate(CONFIGS.items()):
            work = tmp / f"{round_no}-{index}"
            with mock.patch.dict(os.environ, env):  # restores the environment on the way out
                for shared in STACK_ENV:
                    os.environ.pop(shared, None)
                with lease(Settings(state_dir=work / "state"), _log, own=True) as stack:
                    os.environ["BENCH_KAFKA_PID"] = str(stack.pids[0])  # its CPU, per run
                    runs[name] += measure_pipeline(stack.settings(Settings()), work, name,
                                                   rate, seconds, fresh_broker=True, log=_log)
    return runs


def to_markdown(runs: dict[str, list[RateResult]], rate: float, seconds: float) -> str:
    return section(
        "The local broker's request threads",
        f"Command: `{COMMAND}`. The default pipeline (decoy and monitor on) at {rate:,.0f} "
        f"requests/s, {seconds:g} s per run, deadline {DEADLINE_MS:g} ms, on a local broker "
        "started for each configuration and round (its threads from "
        "`RENDEZVOUS_LOCAL__NETWORK_THREADS` and `RENDEZVOUS_LOCAL__IO_THREADS`); "
        f"configurations take turns, {RUNS} runs each per round. **broker cpu** = the "
        "broker's share of one core; **cpu** = the pipeline's processes and the broker. "
        "The defaults are the first row.",
        table(runs, broker=True),
    )


def run(rate: float = RATE, rounds: int = ROUNDS, seconds: float = SECONDS) -> str:
    with tempfile.TemporaryDirectory(prefix="bench-broker-") as tmp:
        return to_markdown(measure(Path(tmp), rate, rounds, seconds), rate, seconds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=RATE)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--seconds", type=float, default=SECONDS)
    args = parser.parse_args(argv)
    print(run(args.rate, args.rounds, args.seconds))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(run_interruptibly(main))
