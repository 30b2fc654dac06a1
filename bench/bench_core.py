"""Decisions per second of the rendezvous core alone, on one core.

No Kafka and no decoding: requests and scores are built up front, then each
scenario feeds the same calls the Kafka runner makes. ``run()`` returns a
Markdown section for ``docs/benchmarks.md``; run as a script, it prints it.
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import time
from collections.abc import Callable

from rendezvous.core import Rendezvous
from rendezvous.messages import Policy, Score

N = 200_000
DEADLINE_MS = 50.0
COMMAND = "python bench/bench_core.py"


def _scores(model: str, ids: list[str], score: float = 0.8) -> list[Score]:
    return [Score(id=i, model=model, version="1", status="ok", score=score) for i in ids]


def _wall_ms() -> float:
    return time.time() * 1000.0


def ok_on_arrival(ids: list[str], primary_score: float = 0.8) -> Callable[[], int]:
    """open, canary answers, primary answers: decided ``ok`` on the primary's answer."""
    canary = _scores("canary", ids)
    primary = _scores("primary", ids, score=primary_score)
    rdv = Rendezvous(Policy(), _wall_ms)

    def go() -> int:
        decided = 0
        for n, (rid, c, p) in enumerate(zip(ids, canary, primary, strict=True)):
            now = _wall_ms()  # the event's ts, as the runner would have it
            rdv.open(rid, now, now + DEADLINE_MS)
            rdv.offer(c)
            decided += len(rdv.offer(p))
            if n % 100 == 99:
                decided += len(rdv.tick())  # the runner's poll loop ticks between batches
        return decided

    return go


def primary_first(ids: list[str]) -> Callable[[], int]:
    """open, primary answers (decided ``ok``), canary answers late."""
    canary, primary = _scores("canary", ids), _scores("primary", ids)
    rdv = Rendezvous(Policy(), _wall_ms)

    def go() -> int:
        decided = 0
        for n, (rid, c, p) in enumerate(zip(ids, canary, primary, strict=True)):
            now = _wall_ms()  # the event's ts, as the runner would have it
            rdv.open(rid, now, now + DEADLINE_MS)
            decided += len(rdv.offer(p))
            rdv.offer(c)
            if n % 100 == 99:
                decided += len(rdv.tick())
        return decided

    return go


def invalid_primary(ids: list[str]) -> Callable[[], int]:
    """open, canary answers, primary answers NaN: ``fallback`` at once."""
    return ok_on_arrival(ids, primary_score=float("nan"))


def by_deadline(ids: list[str]) -> Callable[[], int]:
    """open, canary answers, primary never does: ``fallback`` from ``tick`` at the deadline.

    A virtual clock moves 10 µs per request (100k requests/s) and the loop ticks
    every 100 requests, so about 5,000 requests are pending at any time.
    """
    canary = _scores("canary", ids)
    now = [0.0]
    rdv = Rendezvous(Policy(), lambda: now[0])

    def go() -> int:
        decided = 0
        for n, (rid, c) in enumerate(zip(ids, canary, strict=True)):
            t = n * 0.01
            now[0] = t
            rdv.open(rid, t, t + DEADLINE_MS)
            rdv.offer(c)
            if n % 100 == 99:
                decided += len(rdv.tick())
        now[0] += DEADLINE_MS
        return decided + len(rdv.tick())

    return go


def answers_first(ids: list[str]) -> Callable[[], int]:
    """canary and primary answer before the request is read; open decides ``ok``."""
    canary, primary = _scores("canary", ids), _scores("primary", ids)
    rdv = Rendezvous(Policy(), _wall_ms)

    def go() -> int:
        decided = 0
        for n, (rid, c, p) in enumerate(zip(ids, canary, primary, strict=True)):
            rdv.offer(c)
            rdv.offer(p)
            now = _wall_ms()
            decided += len(rdv.open(rid, now, now + DEADLINE_MS))
            if n % 100 == 99:
                decided += len(rdv.tick())
        return decided

    return go


SCENARIOS: list[tuple[str, Callable[[list[str]], Callable[[], int]]]] = [
    ("ok on arrival (open, canary, primary)", ok_on_arrival),
    ("primary first, canary late", primary_first),
    ("invalid primary: fallback at once", invalid_primary),
    ("fallback at deadline via tick()", by_deadline),
    ("answers before request", answers_first),
]


def measure(factory: Callable[[list[str]], Callable[[], int]], n: int) -> float:
    """Decisions per second of one scenario over ``n`` fresh requests."""
    ids = [f"req-{i:09d}" for i in range(n)]
    go = factory(ids)
    # The prebuilt inputs are not part of the workload (in the runner each record is
    # short-lived); keep the collector from rescanning them on every full collection.
    gc.collect()
    gc.freeze()
    try:
        start = time.perf_counter()
        decided = go()
        elapsed = time.perf_counter() - start
    finally:
        gc.unfreeze()
    if decided != n:
        raise AssertionError(f"decided {decided} of {n}")
    return n / elapsed


def run(n: int = N) -> str:
    """Run every scenario once (best of two) and return the Markdown section."""
    rows = []
    for name, factory in SCENARIOS:
        rate = max(measure(factory, n) for _ in range(2))
        rows.append(f"| {name} | {n:,} | {rate:,.0f} | {1e6 / rate:.2f} |")
    return "\n".join(
        [
            "## Rendezvous core",
            "",
            f"`{COMMAND}` — the core alone on one core: no Kafka, no decoding; "
            "requests and scores built beforehand; a `tick()` every 100 requests; wall "
            "clock except the deadline scenario (virtual clock, 100k requests/s); "
            f"best of two runs (Python {platform.python_version()}, {platform.machine()}).",
            "",
            "| scenario | requests | decisions/s | µs/decision |",
            "|---|---:|---:|---:|",
            *rows,
            "",
        ]
    )


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args()
    sys.stdout.write(run())
