"""Open-loop load: events sent at a fixed rate whatever the answers, and the scored topic
read back, for the demo, the chaos run, the tests and the end-to-end benchmark.

The sender schedules event ``i`` at ``t0 + i / rate`` by the clock and never
waits for a reply (open loop). Each event's ``ts`` is its *scheduled* send time,
so when the sender or the system falls behind, the delay counts in the latency
instead of being hidden (no coordinated omission). The reader takes, per request
id, the time its first result was consumed (``read_committed``): latency =
that time - ``ts``, the time a client waits.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing as mp
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from rendezvous.messages import Scored, Undecodable, decode_scored, is_provisional
from rendezvous.replay.progress import Progress
from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise, make_producer, produce
from rendezvous.transport.connect import kafka_config
from rendezvous.transport.reader import OFFSET_BEGINNING, OFFSET_END, TopicReader

DEADLINE_MS = 50.0
HIGHEST_US = 3_600_000_000
QUIET_S = 3.0
"""After the last send, the rate measurement stops waiting once no result came for this
long..."""
DRAIN_S = 20.0
"""...or after this long at most."""
WARM_UP = "warm-up"


def now_ms() -> float:
    return time.time() * 1000.0


_gc_paused = 0
_gc_lock = threading.Lock()


@contextlib.contextmanager
def instrument_gc_paused() -> Iterator[None]:
    """Python's garbage collector off while the measuring side sends or reads.

    The sender and the reader are the instrument, not the system measured: a full
    collection in either (measured: the reader's, 9 s into a 2,000/s run, with 18,000
    results held) delays sends or receipts by tens of ms, and that delay would be counted
    as the pipeline's latency. A run holds little cyclic garbage; it is collected after.
    Nested and concurrent uses are counted: the collector is back on after the last."""
    global _gc_paused
    with _gc_lock:
        _gc_paused += 1
        gc.disable()
    try:
        yield
    finally:
        with _gc_lock:
            _gc_paused -= 1
            if not _gc_paused:
                gc.enable()


def warm_producer(settings: Settings, **overrides: Any) -> Producer:
    """A producer that already has its producer id: an idempotent producer spends its first
    hundreds of ms getting one, which must not count against the first deadlines."""
    producer = make_producer(settings, **overrides)
    topic = settings.topic(WARM_UP)
    admin = AdminClient(kafka_config(settings, **{k: v for k, v in overrides.items()
                                                 if k == "logger"}))
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result()
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
    producer.produce(topic, b"")
    flush_or_raise(producer)
    return producer


class OpenLoop:
    """Sends ``make(i, ts) -> (key, value)`` for i = 0, 1, ... at ``rate`` per second.

    ``ts(i)`` is event ``i``'s scheduled send time (wall-clock ms). With ``track``, the
    keys of records the broker did not acknowledge are kept in :attr:`failed`. With
    ``partitions``, event ``i`` goes to partition ``i % partitions`` (else: by key).
    """

    def __init__(self, producer: Producer, topic: str, rate: float,
                 make: Callable[[int, float], tuple[bytes, bytes]], *,
                 track: bool = False, partitions: int = 0) -> None:
        self.producer, self.topic, self.rate, self.make = producer, topic, rate, make
        self.per_ms = rate / 1000.0
        self.t0 = 0.0
        """Wall-clock ms of event 0; set by :meth:`run` unless set before."""
        self.sent = 0
        self.first_ms = self.last_ms = 0.0
        self.max_lag_ms = 0.0
        """Worst delay of a send behind its schedule (the load generator's own health)."""
        self.failed: dict[str, str] = {}
        self.partitions = partitions
        self.options: dict[str, Any] = {"on_delivery": self._delivered} if track else {}
        """What every ``produce`` call is given."""

    def ts(self, i: int) -> float:
        return self.t0 + i / self.per_ms

    def _delivered(self, error: KafkaError | None, record: Message) -> None:
        if error is not None:
            self.failed[(record.key() or b"").decode()] = str(error)

    def run(self, total: int | None = None, stop: threading.Event | None = None,
            tick: Callable[[int], None] | None = None) -> None:
        """Send until ``total`` events are sent or ``stop`` is set; ``tick(sent)`` after each
        burst of due events."""
        producer, topic, make, options = self.producer, self.topic, self.make, self.options
        partitions = self.partitions
        poll, clock, per_ms = producer.poll, time.time, self.per_ms
        self.t0 = t0 = self.t0 or clock() * 1000.0
        i, lag = 0, 0.0
        while (total is None or i < total) and not (stop is not None and stop.is_set()):
            now = clock() * 1000.0
            due = int((now - t0) * per_ms) + 1
            if total is not None:
                due = min(total, due)
            if i < due and not self.first_ms:
                self.first_ms = now
            while i < due:
                ts = t0 + i / per_ms
                lag = max(lag, now - ts)
                key, value = make(i, ts)
                if partitions:
                    options["partition"] = i % partitions
                produce(producer, topic, value, key, wait_s=0.01, **options)
                i += 1
            poll(0)
            self.sent, self.max_lag_ms = i, lag
            if tick is not None:
                tick(i)
            wait = (t0 + i / per_ms) / 1000.0 - clock()
            if wait > 0:
                if stop is not None:
                    stop.wait(wait)
                else:
                    time.sleep(wait)
        self.last_ms = clock() * 1000.0

    def start(self, stop: threading.Event) -> threading.Thread:
        """Send in a background thread until ``stop`` is set."""
        thread = threading.Thread(target=self.run, kwargs={"stop": stop}, name="open-loop",
                                  daemon=True)
        thread.start()
        return thread


class ScoredReader:
    """Reads the scored topic from ``start`` (assigned by hand: no group join to wait for)
    and keeps, per request id, when its first final result was consumed (wall-clock ms) and
    the result; counts duplicates, provisional results (skipped), undecodable records and
    records of other runs (ids not starting with ``prefix``). :meth:`start` reads in a
    background thread; only that thread touches the consumer then."""

    def __init__(self, settings: Settings, start: int = OFFSET_BEGINNING, prefix: str = "",
                 name: str = "scored-reader") -> None:
        self.reader = TopicReader(settings, settings.topic("scored"), start, name=name,
                                  config={"fetch.wait.max.ms": 5})
        self.prefix = prefix
        self.arrived: dict[str, float] = {}
        self.stamped: dict[str, float] = {}
        """Per request id, its first result's record timestamp (ms; the broker's append
        time when the topic is set to ``LogAppendTime``)."""
        self.results: dict[str, Scored] = {}
        self.statuses: Counter[str] = Counter()
        self.duplicates = self.undecodable = self.foreign = self.provisional = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: Exception | None = None

    def step(self, timeout_s: float = 0.05) -> int:
        """Read what has arrived (waiting at most ``timeout_s`` for it); how many records."""
        records = self.reader.poll(timeout_s, 2000)
        now = now_ms()
        for record in records:
            rid = (record.key() or b"").decode()
            if is_provisional(record.headers()):
                self.provisional += 1
            elif not rid.startswith(self.prefix):
                self.foreign += 1
            elif rid in self.arrived:
                self.duplicates += 1
            else:
                self.arrived[rid] = now
                self.stamped[rid] = float(record.timestamp()[1])
                try:
                    result = decode_scored(record.value())
                except Undecodable:  # e.g. the bare relay's copies of inputs
                    self.undecodable += 1
                    self.statuses["relayed"] += 1
                    continue
                self.results[rid] = result
                self.statuses[result.status] += 1
        return len(records)

    def caught_up(self) -> bool:
        return self.reader.caught_up()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scored-reader", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                self.step()
        except Exception as exc:  # a fatal client error: the waiting side raises it
            self._error = exc

    def check(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"reading {self.reader.topic} failed: {self._error}")

    def stop(self) -> None:
        """Stop reading (what was read stays)."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=5)

    def close(self) -> None:
        self.stop()
        self.reader.close()


# -- the demo's load: every result kept -------------------------------------------


@dataclass
class LoadResult:
    """What was sent and what came back."""

    sent: int
    send_errors: int
    send_seconds: float
    results: dict[str, Scored]
    """The first result of each request id."""
    latency_us: dict[str, int]
    """Client-side end-to-end latency of each answered request, microseconds."""
    duplicates: int
    missing: list[str]
    undecodable: int = 0


def run_load(settings: Settings, producer: Producer, reader: ScoredReader,
             events: list[dict[str, Any]], rate: float, deadline_ms: float,
             wait_s: float = 60.0, progress: Progress | None = None) -> LoadResult:
    """Send ``events`` at ``rate`` per second, each with its ``ts`` and ``deadline_ms``; then
    wait until each has its result (or ``wait_s`` passed) and the scored topic is read to
    its end (a duplicate would be there). ``reader`` must be reading already."""
    ids = [event["id"] for event in events]

    def make(i: int, ts: float) -> tuple[bytes, bytes]:
        body = {**events[i], "ts": ts, "deadline_ms": deadline_ms}
        return ids[i].encode(), msgspec.json.encode(body)

    def show(sent: int) -> None:
        if progress:
            progress.show(sent, f"results {len(reader.arrived):,}")

    loop = OpenLoop(producer, settings.topic("input"), rate, make, track=True)
    with instrument_gc_paused():  # the reader's thread reads meanwhile
        loop.run(len(events), tick=show)
        _flush(producer)
        send_seconds = (loop.last_ms - loop.t0) / 1000.0
        _wait(lambda: len(reader.arrived) >= len(events), wait_s, reader, show, len(events))
    _wait(reader.caught_up, 10.0, reader, None, len(events))
    if progress:
        progress.close(f"results {len(reader.arrived):,}")
    reader.stop()
    latency = {rid: max(int((reader.arrived[rid] - loop.ts(i)) * 1000), 1)
               for i, rid in enumerate(ids) if rid in reader.results}
    return LoadResult(len(events), len(loop.failed), send_seconds, dict(reader.results),
                      latency, reader.duplicates,
                      [rid for rid in ids if rid not in reader.arrived], reader.undecodable)


def _flush(producer: Producer, timeout_s: float = 30.0) -> None:
    # Short flushes: a signal is handled between them, not after 30 s.
    give_up = time.monotonic() + timeout_s
    while producer.flush(0.1) and time.monotonic() < give_up:
        pass
    if len(producer):
        raise RuntimeError(f"{len(producer)} events not acknowledged by Kafka in {timeout_s} s")


def _wait(done: Callable[[], bool], timeout_s: float, reader: ScoredReader,
          show: Callable[[int], None] | None, total: int) -> None:
    give_up = time.monotonic() + timeout_s
    while not done() and time.monotonic() < give_up:
        reader.check()
        if show:
            show(total)
        time.sleep(0.02)


# -- the benchmark's measurement: one rate, an HDR histogram --------------------------


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


@dataclass(frozen=True)
class Latency:
    """Latency percentiles in ms (HDR histogram, 3 significant digits)."""

    count: int
    p50: float
    p99: float
    p999: float
    max: float


def latency(values_us: Iterable[int]) -> Latency:
    """Percentiles of latencies given in microseconds (1 us .. 1 hour)."""
    from hdrh.histogram import HdrHistogram

    histogram = HdrHistogram(1, HIGHEST_US, 3)
    for value in values_us:
        histogram.record_value(min(max(value, 1), HIGHEST_US))
    p50, p99, p999 = (histogram.get_value_at_percentile(p) / 1000 for p in (50.0, 99.0, 99.9))
    return Latency(histogram.get_total_count(), p50, p99, p999, histogram.get_max_value() / 1000)


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
