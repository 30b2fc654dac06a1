"""The benchmarks' measurement of one rate: open-loop load at a fixed rate into the input
topic, the scored topic read back in a separate process, latencies in an HDR histogram.

Deadline adherence = results within the deadline / events **sent**: a missing result
counts as a miss. The load itself is the demo's (:mod:`rendezvous.demo.workload`).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from rendezvous.demo.workload import (
    OpenLoop,
    ScoredReader,
    instrument_gc_paused,
    latency,
    now_ms,
    warm_producer,
)
from rendezvous.settings import Settings
from rendezvous.transport.reader import OFFSET_END

DEADLINE_MS = 50.0
QUIET_S = 3.0
"""After the last send, the rate measurement stops waiting once no result came for this
long..."""
DRAIN_S = 20.0
"""...or after this long at most."""


@dataclass(frozen=True)
class RateResult:
    """One open-loop run at one rate."""

    rate: float
    seconds: float
    sent: int
    send_rate: float
    """Events per second the sender achieved (first to last send)."""
    max_send_lag_ms: float
    """Worst delay of a send behind its schedule (the load generator's own health)."""
    received: int
    duplicates: int
    foreign: int
    """Records of the scored topic that belong to no request of this run."""
    within: int
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    statuses: dict[str, int] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    """CPU seconds used during the run, per process of the system under test (filled in by
    the caller)."""
    load: float = 0.0
    """The machine's 1-minute load average at the end of the run."""

    @property
    def missing(self) -> int:
        return self.sent - self.received

    @property
    def adherence(self) -> float:
        """Share of sent requests answered within the deadline."""
        return self.within / self.sent if self.sent else 0.0

    def line(self) -> str:
        return (f"rate {self.rate:7,.0f}/s sent {self.sent:7,} ({self.send_rate:7,.0f}/s, lag "
                f"<= {self.max_send_lag_ms:5.1f} ms) got {self.received:7,} dup "
                f"{self.duplicates} p50 {self.p50_ms:6.1f} p99 {self.p99_ms:7.1f} p99.9 "
                f"{self.p999_ms:7.1f} max {self.max_ms:7.1f} ms within "
                f"{self.adherence * 100:6.2f}% {dict(self.statuses)}")


def latency_stats(latencies_ms: Iterable[float], deadline_ms: float) -> dict[str, Any]:
    """Count, within-deadline count and percentiles of ``latencies_ms`` (NaN when empty)."""
    values = list(latencies_ms)
    found = latency(int(ms * 1000.0) for ms in values)
    nan = float("nan")
    return {"received": found.count, "within": sum(ms <= deadline_ms for ms in values),
            "p50_ms": found.p50 if values else nan, "p99_ms": found.p99 if values else nan,
            "p999_ms": found.p999 if values else nan, "max_ms": found.max if values else nan}


def _read_rate(settings: Settings, tag: str, ready: Any, control: Any, out: Any,
               deadline_ms: float) -> None:
    """Child process: read the scored topic from its end until told to stop; the stats."""
    reader = ScoredReader(settings, OFFSET_END, prefix=f"{tag}-", name=f"{tag}-reader")
    ready.set()
    t0, per_ms = control.get()  # the schedule, once the sender starts
    expected: int | None = None
    ended = last_new = 0.0
    with instrument_gc_paused():
        while True:
            if reader.step():
                last_new = time.monotonic()
            if expected is None and not control.empty():
                expected = control.get()
                ended = last_new = time.monotonic()
            if expected is not None and (len(reader.arrived) >= expected
                                         or time.monotonic() - last_new > QUIET_S
                                         or time.monotonic() - ended > DRAIN_S):
                break
    reader.close()
    latencies = (at - (t0 + run_index(rid, tag) / per_ms) for rid, at in reader.arrived.items())
    out.put({**latency_stats(latencies, deadline_ms), "duplicates": reader.duplicates,
             "foreign": reader.foreign, "statuses": dict(reader.statuses)})


def sample_bodies(n: int = 1000) -> list[bytes]:
    """Distinct named-feature bodies (the JSON of ``features``) from the packaged data set."""
    from rendezvous.model import sample_events

    return [msgspec.json.encode(e["features"]) for e in sample_events(n, seed=7)]


def tagged_requests(tag: str, bodies: list[bytes]) -> Callable[[int, float], tuple[bytes, bytes]]:
    """:class:`OpenLoop`'s ``make`` for a measured run: request ``i`` is ``<tag>-<i>`` (so
    a reader finds its run and its schedule from the id alone), with one of ``bodies``."""
    prefix, nb = tag.encode(), len(bodies)

    def make(i: int, ts: float) -> tuple[bytes, bytes]:
        rid = b"%s-%d" % (prefix, i)
        return rid, b'{"id":"%s","ts":%.3f,"features":%s}' % (rid, ts, bodies[i % nb])

    return make


def run_index(rid: str, tag: str) -> int:
    """The sequence number ``i`` of a request id :func:`tagged_requests` made for ``tag``."""
    return int(rid[len(tag) + 1:])


def measure_rate(settings: Settings, rate: float, seconds: float,
                 deadline_ms: float = DEADLINE_MS, bodies: list[bytes] | None = None) -> RateResult:
    """Send ``rate`` events/s for ``seconds`` to the input topic; measure the scored topic
    from a separate process (so the sender and the reader do not share one interpreter).

    Request ids carry a run tag and a sequence number, so results of other runs are
    ignored and missing / duplicated results are counted exactly. Deadline adherence =
    results within the deadline / events **sent**: a missing result counts as a miss.
    The instrument keeps out of its own measurement: the producer has its id and its
    connection before the first send is due, and neither side collects garbage while
    it measures (:func:`instrument_gc_paused`).
    """
    tag = f"lg{uuid.uuid4().hex[:8]}"
    bodies = bodies or sample_bodies()
    ctx = mp.get_context("spawn")
    ready, control, out = ctx.Event(), ctx.Queue(), ctx.Queue()
    reader = ctx.Process(target=_read_rate, args=(settings, tag, ready, control, out,
                                                  deadline_ms), daemon=True)
    reader.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("the load generator's reader did not start")
        producer = warm_producer(settings)  # its producer id and connection: not timed
        loop = OpenLoop(producer, settings.topic("input"), rate, tagged_requests(tag, bodies))
        loop.t0 = now_ms() + 100.0
        control.put((loop.t0, loop.per_ms))
        n = int(rate * seconds)
        with instrument_gc_paused():
            loop.run(n)
        producer.flush(30)
        control.put(n)
        stats = out.get(timeout=DRAIN_S + 60)
        reader.join(10)
    finally:
        if reader.is_alive():
            reader.kill()
            reader.join(5)
    return RateResult(rate=rate, seconds=seconds, sent=n,
                      send_rate=n / max((loop.last_ms - loop.first_ms) / 1000.0, 1e-9),
                      max_send_lag_ms=loop.max_lag_ms, load=os.getloadavg()[0], **stats)
