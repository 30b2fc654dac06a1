"""Open-loop load for the demo: events produced at a fixed rate whatever the answers, the
scored topic read back (read_committed) in a thread, the client-side latency of each request.

Latency here is what a client sees: from just before ``produce`` to the moment its
consumer returns the scored record.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import msgspec
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from rendezvous.messages import Scored, decode_scored
from rendezvous.replay.pacing import Pacer
from rendezvous.settings import Settings
from rendezvous.transport.clients import make_producer


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


@dataclass
class _Seen:
    results: dict[str, Scored] = field(default_factory=dict)
    arrived: dict[str, float] = field(default_factory=dict)
    duplicates: int = 0
    undecodable: int = 0


class ScoredReader:
    """Reads every partition of the scored topic from the beginning in a background thread
    (assigned by hand: no group join to wait for), read_committed."""

    def __init__(self, settings: Settings, timeout_s: float = 15.0) -> None:
        self.topic = settings.topic("scored")
        self.consumer = Consumer(settings.kafka_config(**{
            "group.id": f"{settings.group('demo-reader')}-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": 5,
            "enable.partition.eof": True,
        }))
        self.partitions = [TopicPartition(self.topic, p, OFFSET_BEGINNING)
                           for p in self._led_partitions(timeout_s)]
        self.consumer.assign(self.partitions)
        self.seen = _Seen()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="scored-reader", daemon=True)
        self._error: KafkaError | None = None
        # Partitions read to their end: librdkafka says so (PARTITION_EOF) each time it gets
        # there. Only the reader thread touches the consumer: a watermark query from another
        # thread while it consumed was seen to block.
        self._at_end: set[int] = set()

    def _led_partitions(self, timeout_s: float) -> list[int]:
        """The topic's partitions once each has a leader (a new topic's metadata can lag)."""
        give_up = time.monotonic() + timeout_s
        while True:
            topic = self.consumer.list_topics(self.topic, timeout=10).topics[self.topic]
            led = all(p.leader >= 0 for p in topic.partitions.values())
            if (topic.partitions and led) or time.monotonic() >= give_up:
                return sorted(topic.partitions)
            time.sleep(0.1)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            # poll() returns at the first record; consume(n, t) would wait t for n of them,
            # and that wait would count as latency. Then take whatever else is there.
            first = self.consumer.poll(0.05)
            if first is None:
                continue
            now = time.perf_counter()
            records = [first, *self.consumer.consume(1000, 0)]
            for record in records:
                error, partition = record.error(), record.partition()
                if error is None:
                    self._at_end.discard(partition)
                    self._add(record.value(), now)
                elif error.code() == KafkaError._PARTITION_EOF and partition is not None:
                    self._at_end.add(partition)
                elif error.fatal():
                    self._error = error

    def _add(self, value: bytes | None, now: float) -> None:
        try:
            scored = decode_scored(value or b"")
        except msgspec.DecodeError:
            self.seen.undecodable += 1
            return
        if scored.id in self.seen.results:
            self.seen.duplicates += 1
        else:
            self.seen.results[scored.id] = scored
            self.seen.arrived[scored.id] = now

    def caught_up(self) -> bool:
        """Whether every partition has been read to its end (as of the last poll)."""
        return len(self._at_end) == len(self.partitions)

    def check(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"reading {self.topic} failed: {self._error}")

    def stop(self) -> None:
        """Stop reading (what was read stays in :attr:`seen`)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def close(self) -> None:
        self.stop()
        self.consumer.close()


class ProgressLine:
    """``sent x/n [####....] rate results y`` on stderr: redrawn in place on a terminal, a
    line every few seconds otherwise (logs, CI)."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 30) -> None:
        self.total, self.width = total, width
        self.stream = stream if stream is not None else sys.stderr
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._every = 0.2 if self._tty else 5.0
        self._start = self._last = time.monotonic()
        self._rate = 0.0

    def show(self, sent: int, answered: int, final: bool = False) -> None:
        now = time.monotonic()
        if sent < self.total or not self._rate:
            # The send rate, frozen once everything is sent (waiting is not sending).
            self._rate = sent / max(now - self._start, 1e-9)
        if not final and now - self._last < self._every:
            return
        self._last = now
        filled = int(self.width * sent / max(self.total, 1))
        line = (f"sent {sent:,}/{self.total:,} [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{self._rate:,.0f}/s  results {answered:,}")
        self.stream.write(("\r" + line + ("\n" if final else "")) if self._tty else line + "\n")
        self.stream.flush()


def warm_producer(settings: Settings) -> Producer:
    """The load's producer, connected now: an idempotent producer spends its first
    hundreds of ms getting a producer id, which must not count against the first deadlines."""
    producer = make_producer(settings)
    producer.list_topics(settings.topic("input"), timeout=10)
    return producer


def run_load(settings: Settings, producer: Producer, reader: ScoredReader,
             events: list[dict[str, Any]], rate: float, deadline_ms: float,
             wait_s: float = 60.0, progress: ProgressLine | None = None) -> LoadResult:
    """Send ``events`` at ``rate`` per second, each with ``ts`` and ``deadline_ms``; then wait
    until each has its result (or ``wait_s`` passed) and the scored topic is read to its end."""
    topic, pacer = settings.topic("input"), Pacer("rate", rate)
    sent_at: dict[str, float] = {}
    errors: list[KafkaError] = []

    def delivered(error: KafkaError | None, _record: object) -> None:
        if error is not None:
            errors.append(error)

    started = time.perf_counter()
    for i, event in enumerate(events):
        _sleep(pacer.delay(i, 0.0))
        body = msgspec.json.encode({**event, "ts": time.time() * 1000.0,
                                    "deadline_ms": deadline_ms})
        sent_at[event["id"]] = time.perf_counter()
        producer.produce(topic, body, event["id"].encode(), on_delivery=delivered)
        producer.poll(0)
        if progress:
            progress.show(i + 1, len(reader.seen.results))
    _flush(producer)
    send_seconds = time.perf_counter() - started
    _wait(lambda: len(reader.seen.results) >= len(events), wait_s, reader, progress, len(events))
    # Then read to the end of every partition: a duplicate would be there.
    _wait(reader.caught_up, 10.0, reader, None, len(events))
    if progress:
        progress.show(len(events), len(reader.seen.results), final=True)
    reader.stop()
    seen = reader.seen
    latency = {rid: max(int((seen.arrived[rid] - sent_at[rid]) * 1e6), 1)
               for rid in seen.results if rid in sent_at}
    return LoadResult(len(events), len(errors), send_seconds, dict(seen.results), latency,
                      seen.duplicates, [rid for rid in sent_at if rid not in seen.results],
                      seen.undecodable)


def _sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)


def _flush(producer: Producer, timeout_s: float = 30.0) -> None:
    # Short flushes: a signal is handled between them, not after 30 s.
    give_up = time.monotonic() + timeout_s
    while producer.flush(0.1) and time.monotonic() < give_up:
        pass
    if len(producer):
        raise RuntimeError(f"{len(producer)} events not acknowledged by Kafka in {timeout_s} s")


def _wait(done: Callable[[], bool], timeout_s: float, reader: ScoredReader,
          progress: ProgressLine | None, total: int) -> None:
    give_up = time.monotonic() + timeout_s
    while not done() and time.monotonic() < give_up:
        reader.check()
        if progress:
            progress.show(total, len(reader.seen.results))
        time.sleep(0.02)
