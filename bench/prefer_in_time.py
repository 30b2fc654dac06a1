"""How many deadline misses ``prefer_in_time`` avoids with the primary slowed past the deadline.

    python bench/prefer_in_time.py [--delay-ms 60] [--rate 200] [--seconds 10] [--rounds 2]

One pipeline (primary worker with ``--delay-ms``, canary worker, one ``serve``; no decoy
or monitor), then rounds of: policy ``prefer_in_time`` off, a warm-up, an open-loop
measurement (``measure_rate`` of ``bench/measure.py``: each result timed from its
request's scheduled send to the moment a reader in another process consumed it; a
missing result is a miss); the same with the rule on (live policy change). Prints one
line per measurement and the load average. A one-off measurement, not part of
``make bench`` nor of the tests.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from measure import measure_rate
from rendezvous.demo.signals import run_interruptibly
from rendezvous.demo.stack import lease
from rendezvous.local.pipeline import PipelineSpec, component_env, start_pipeline
from rendezvous.local.supervisor import Supervisor
from rendezvous.messages import Policy
from rendezvous.service.control import publish_policy
from rendezvous.settings import Settings
from scratch import fresh_topics


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay-ms", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--deadline-ms", type=float, default=50.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rendezvous-in-time-") as tmp:
        state = Path(os.environ.get("RENDEZVOUS_STATE_DIR") or Path(tmp) / "state")
        with lease(Settings(state_dir=state)) as stack:
            settings = fresh_topics(stack.settings(Settings()), "intime")
            sup = Supervisor(Path(tmp) / "logs", component_env(settings))
            try:
                start_pipeline(sup, PipelineSpec(archive=Path(tmp) / "archive",
                                                 primary_delay_ms=args.delay_ms,
                                                 monitor=False, decoy=False))
                for _ in range(args.rounds):
                    for rule in (False, True):
                        publish_policy(settings, Policy(deadline_ms=args.deadline_ms,
                                                        prefer_in_time=rule))
                        time.sleep(1.0)  # serve applies it to requests after it
                        measure_rate(settings, args.rate, 3.0, args.deadline_ms)  # warm-up
                        r = measure_rate(settings, args.rate, args.seconds, args.deadline_ms)
                        misses = r.sent - r.within
                        print(f"prefer_in_time={'on ' if rule else 'off'} sent {r.sent} "
                              f"received {r.received} within {args.deadline_ms:g} ms "
                              f"{r.within} misses {misses} ({misses / r.sent:.1%}) "
                              f"p50 {r.p50_ms:.1f} p99 {r.p99_ms:.1f} ms "
                              f"statuses {r.statuses} load {os.getloadavg()}", flush=True)
            finally:
                sup.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(run_interruptibly(main))
