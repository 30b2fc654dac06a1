"""The demo's workload: events sent at a fixed rate whatever the answers (open loop), and
the scored topic read back. The chaos run, the tests and the benchmarks drive the pipeline
with it too.

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
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from rendezvous.messages import Scored, Undecodable, decode_scored, is_provisional
from rendezvous.replay.progress import Progress
from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise, make_producer, produce
from rendezvous.transport.connect import kafka_config
from rendezvous.transport.reader import OFFSET_BEGINNING, TopicReader

HIGHEST_US = 3_600_000_000
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


# -- the demo's load: every result kept ---------------------------------------------


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


# -- latency percentiles ---------------------------------------------------------


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
