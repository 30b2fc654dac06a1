"""Chaos run: kill -9 the pipeline's components under load, then restart the broker
(the harness is ``tests/stress/chaos``; ``make bench`` runs its sections ``chaos`` and
``chaos-cluster``).

    python bench/chaos.py [--rate 200] [--deadline-ms 50] [--broker-kill]
                          [--monitor | --every-component | --brokers 3]

Starts its own local Kafka + Redis in a temporary state directory unless
``KAFKA_BOOTSTRAP_SERVERS`` is set (then ``REDIS_URL`` too). Prints the Markdown section
``## Chaos run``.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
from pathlib import Path

import common  # noqa: F401  (the repository root on sys.path, for tests.stress.chaos)
from tests.stress.chaos.harness import CLUSTER, EVERY, run_chaos
from tests.stress.chaos.report import COMMAND, EVERY_COMPONENT, ChaosConfig, to_markdown


def run_cluster() -> str:
    """The three-broker chaos run (its own local cluster); the Markdown section."""
    return run(CLUSTER, f"{COMMAND} --brokers 3").replace("## Chaos run",
                                                          "## Chaos run: three brokers", 1)


def run_every_component() -> str:
    """The single-broker chaos run of ``make bench``, on a local stack of its own even when
    the benchmark shares one: restarting the broker needs a broker this run owns."""
    return run(EVERY, f"{COMMAND} --every-component", own_stack=True)


def run(config: ChaosConfig | None = None, command: str = COMMAND,
        own_stack: bool | None = None) -> str:
    """Run the chaos run (on its own local stack unless one is given); the Markdown section.

    The logs are kept (their directory printed to stderr) when something was lost,
    duplicated or missing; otherwise everything is removed.
    """
    work = Path(tempfile.mkdtemp(prefix="rendezvous-chaos-"))
    result = run_chaos(work, config or ChaosConfig(), own_stack)
    if result.lost or result.duplicated or result.missing_from_archive or result.crashes:
        print(f"chaos: logs kept in {work}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return to_markdown(result, command)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rate", type=float, default=ChaosConfig.rate_per_s)
    parser.add_argument("--deadline-ms", type=float, default=ChaosConfig.deadline_ms)
    parser.add_argument("--broker-kill", action="store_true",
                        help="SIGKILL the broker instead of stopping it cleanly")
    parser.add_argument("--monitor", action="store_true", help="also run the monitor")
    parser.add_argument("--every-component", action="store_true",
                        help=f"kill -9 every component in turn ({', '.join(EVERY_COMPONENT)}; "
                             "implies --monitor), then restart the broker")
    parser.add_argument("--brokers", type=int, default=1,
                        help="3: on a local three-broker cluster, kill -9 the broker leading "
                             "the most input partitions (instead of the component faults)")
    args = parser.parse_args(argv)
    command = COMMAND + "".join(f" {a}" for a in (argv or sys.argv[1:]))
    config = ChaosConfig(rate_per_s=args.rate, deadline_ms=args.deadline_ms,
                         broker_kill=args.broker_kill, monitor=args.monitor)
    if args.every_component:
        config = dataclasses.replace(EVERY, rate_per_s=args.rate, deadline_ms=args.deadline_ms,
                                     broker_kill=args.broker_kill)
    if args.brokers > 1:
        config = dataclasses.replace(CLUSTER, rate_per_s=args.rate, deadline_ms=args.deadline_ms,
                                     monitor=args.monitor, brokers=args.brokers)
    print(run(config, command))


if __name__ == "__main__":
    main()
