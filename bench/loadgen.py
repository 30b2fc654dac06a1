"""Open-loop load generator: fixed send rate, end-to-end latency from the scored topic.

    python bench/loadgen.py --rate 1000 --seconds 15 [--prefix rendezvous.]

The sender schedules event ``i`` at ``t0 + i / rate`` by the clock and never
waits for a reply (open loop). Each event's ``ts`` is its *scheduled* send
time, so when the sender or the system falls behind, the delay counts in the
latency instead of being hidden (no coordinated omission). A separate process
reads the scored topic (``read_committed``, assigned from its end before the
first send) and records, per result, ``latency = consume time - ts`` in an HDR
histogram (``hdrhistogram``). Request ids carry a run tag and a sequence
number, so results of other runs are ignored and missing / duplicated results
are counted exactly.

Deadline adherence = results within the deadline / events **sent**: a missing
result counts as a miss. Works with anything that writes one record per
request, keyed by the request id, to the scored topic: the pipeline, the bare
relay (:mod:`relay`), the faust peer (:mod:`faust_peer`).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec

DEADLINE_MS = 50.0
QUIET_S = 3.0
"""After the last send, stop waiting once no result came for this long..."""
DRAIN_S = 20.0
"""...or after this long at most."""
HIGHEST_US = 3_600_000_000


@dataclass(frozen=True)
class LoadResult:
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


class _Status(msgspec.Struct):
    status: str | None = None


def _consume(conf: dict[str, Any], topic: str, tag: str, ready: Any, control: Any,
             out: Any, deadline_ms: float) -> None:
    """Child process: read ``topic`` from its end, record latencies until told to stop."""
    from confluent_kafka import OFFSET_END, Consumer, TopicPartition
    from hdrh.histogram import HdrHistogram

    consumer = Consumer(conf)
    partitions = consumer.list_topics(topic, timeout=15).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in partitions])
    # Resolve the end offsets now, so results of this run are never skipped.
    for p in partitions:
        consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)
    consumer.consume(1, 0.5)
    prefix = f"{tag}-".encode()
    decoder = msgspec.json.Decoder(_Status)
    hist = HdrHistogram(1, HIGHEST_US, 3)
    seen = bytearray()
    statuses: Counter[str] = Counter()
    received = duplicates = foreign = within = 0
    limit_us = deadline_ms * 1000.0
    t0 = rate = 0.0
    expected: int | None = None
    ended = last_new = 0.0
    ready.set()
    t0, rate = control.get()  # the schedule, once the sender starts
    per_ms = rate / 1000.0
    while True:
        # consume(n, timeout) waits the whole timeout to fill a batch: it would add up to
        # that much to every latency. Block for the first record only, then drain.
        first = consumer.poll(0.05)
        records = [first, *consumer.consume(2000, 0)] if first is not None else []
        now = time.time() * 1000.0
        for record in records:
            if record.error():
                continue
            key = record.key() or b""
            if not key.startswith(prefix):
                foreign += 1
                continue
            seq = int(key[len(prefix):])
            if seq >= len(seen):
                seen.extend(bytes(seq + 1 - len(seen) + 4096))
            if seen[seq]:
                duplicates += 1
                continue
            seen[seq] = 1
            received += 1
            latency_us = max(1.0, (now - (t0 + seq / per_ms)) * 1000.0)
            hist.record_value(min(int(latency_us), HIGHEST_US))
            if latency_us <= limit_us:
                within += 1
            try:
                statuses[decoder.decode(record.value()).status or "relayed"] += 1
            except (msgspec.DecodeError, TypeError):
                statuses["relayed"] += 1
        if records:
            last_new = time.monotonic()
        if expected is None and not control.empty():
            expected = control.get()
            ended = last_new = time.monotonic()
        if expected is not None:
            quiet = time.monotonic() - last_new
            if (received >= expected or quiet > QUIET_S
                    or time.monotonic() - ended > DRAIN_S):
                break
    consumer.close()
    pct = [hist.get_value_at_percentile(q) / 1000.0 for q in (50, 99, 99.9)] if received \
        else [float("nan")] * 3
    out.put({"received": received, "duplicates": duplicates, "foreign": foreign,
             "within": within, "p50_ms": pct[0], "p99_ms": pct[1], "p999_ms": pct[2],
             "max_ms": hist.get_max_value() / 1000.0 if received else float("nan"),
             "statuses": dict(statuses)})


def _events(n: int = 1000) -> list[bytes]:
    """Distinct named-feature bodies (the JSON of ``features``) from the packaged data set."""
    from rendezvous.model import sample_events

    return [msgspec.json.encode(e["features"]) for e in sample_events(n, seed=7)]


def run_load(kafka_conf: dict[str, Any], input_topic: str, scored_topic: str, rate: float,
             seconds: float, deadline_ms: float = DEADLINE_MS,
             bodies: list[bytes] | None = None) -> LoadResult:
    """Send ``rate`` events/s for ``seconds`` to ``input_topic``; measure ``scored_topic``.

    ``kafka_conf`` holds at least ``bootstrap.servers``; the producer and the
    consumer use the project's latency settings (linger 1 ms, fetch wait 5 ms).
    """
    from confluent_kafka import Producer

    from rendezvous.transport.clients import CONSUMER_DEFAULTS, PRODUCER_DEFAULTS

    tag = f"lg{uuid.uuid4().hex[:8]}"
    bodies = bodies or _events()
    ctx = mp.get_context("spawn")
    ready, control, out = ctx.Event(), ctx.Queue(), ctx.Queue()
    consumer_conf = {**kafka_conf, **CONSUMER_DEFAULTS, "group.id": f"{tag}-reader",
                     "isolation.level": "read_committed", "enable.partition.eof": False}
    reader = ctx.Process(target=_consume, args=(consumer_conf, scored_topic, tag, ready, control,
                                                out, deadline_ms), daemon=True)
    reader.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("the load generator's reader did not start")
        producer = Producer({**kafka_conf, **PRODUCER_DEFAULTS})
        n = int(rate * seconds)
        per_ms = rate / 1000.0
        t0 = time.time() * 1000.0 + 100.0
        control.put((t0, rate))
        produce, poll, sleep, clock = producer.produce, producer.poll, time.sleep, time.time
        i, lag, first, nb = 0, 0.0, 0.0, len(bodies)
        while i < n:
            now = clock() * 1000.0
            due = min(n, int((now - t0) * per_ms) + 1)
            if i < due and not first:
                first = now
            while i < due:
                ts = t0 + i / per_ms
                lag = max(lag, now - ts)
                rid = f"{tag}-{i}"
                value = b'{"id":"%s","ts":%.3f,"features":%s}' % (rid.encode(), ts,
                                                                   bodies[i % nb])
                try:
                    produce(input_topic, value, rid)
                except BufferError:
                    poll(0.01)
                    continue
                i += 1
            poll(0)
            wait = (t0 + i / per_ms) / 1000.0 - clock()
            if wait > 0:
                sleep(wait)
        last = clock() * 1000.0
        producer.flush(30)
        control.put(n)
        stats = out.get(timeout=DRAIN_S + 60)
        reader.join(10)
    finally:
        if reader.is_alive():
            reader.kill()
            reader.join(5)
    return LoadResult(rate=rate, seconds=seconds, sent=n,
                      send_rate=n / max((last - first) / 1000.0, 1e-9),
                      max_send_lag_ms=lag, load=os.getloadavg()[0], **stats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--prefix", default="rendezvous.", help="topic prefix")
    parser.add_argument("--bootstrap", default=None, help="default: the settings' broker")
    args = parser.parse_args()
    from rendezvous.settings import Settings

    settings = Settings()
    bootstrap = args.bootstrap or settings.kafka_bootstrap()
    result = run_load({"bootstrap.servers": bootstrap}, f"{args.prefix}input",
                      f"{args.prefix}scored", args.rate, args.seconds)
    print(result.line())


if __name__ == "__main__":
    main()
