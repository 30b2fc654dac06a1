"""Re-produce archived records to a topic, in per-partition order, paced as asked.

Records are sent in recorded-time order, merged across partitions without ever
reordering a partition: each record's time is the running maximum of the
timestamps of its partition so far. With at least as many target partitions,
a record goes to the partition number it came from; otherwise the default
partitioner places it by key (order per key is kept, not per partition).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from rendezvous.archive import TimeLike, read_archive, skipped_files
from rendezvous.replay.errors import ReplayError
from rendezvous.replay.pacing import Mode, Pacer
from rendezvous.replay.progress import Progress
from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise, make_producer, produce
from rendezvous.transport.connect import kafka_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplayConfig:
    """What to replay, where to, and how fast."""

    archive: Path
    topic: str
    """Full name of the target topic."""
    source: str = "input"
    """Logical topic in the archive to replay."""
    start: TimeLike | None = None
    end: TimeLike | None = None
    mode: Mode = "max"
    value: float = 0.0
    """Records per second (``rate``) or speed-up factor (``speed``)."""
    into_production: bool = False
    """Allow the target to be the production input topic."""
    progress: bool = True


@dataclass
class ReplayResult:
    """What a replay did."""

    topic: str
    records: int
    seconds: float
    same_partitions: bool
    skipped: list[dict[str, str]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def replay_order(table: pa.Table) -> np.ndarray:
    """Row indices of ``table`` (sorted by partition, offset) in send order: recorded time,
    never reordering a partition."""
    n = table.num_rows
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    moment = pc.coalesce(table["timestamp_ms"], table["arrival_ms"], 0).to_numpy()
    partition = table["partition"].to_numpy()
    offset = table["offset"].to_numpy()
    effective = np.empty(n, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, partition[1:] != partition[:-1]])
    for begin, stop in zip(starts, np.r_[starts[1:], n], strict=True):
        effective[begin:stop] = np.maximum.accumulate(moment[begin:stop])
    return np.lexsort((offset, partition, effective))


def ensure_topic(settings: Settings, topic: str, fallback_partitions: int) -> int:
    """Create ``topic`` if missing, with the input topic's partition count; returns its count."""
    admin = AdminClient(kafka_config(settings))
    topics = admin.list_topics(timeout=10).topics
    if topic in topics:
        return len(topics[topic].partitions)
    source = topics.get(settings.topic("input"))
    partitions = len(source.partitions) if source is not None else fallback_partitions
    future = admin.create_topics([NewTopic(topic, partitions)], operation_timeout=30)[topic]
    try:
        future.result()
    except Exception as exc:
        if "TOPIC_ALREADY_EXISTS" not in str(exc):
            raise ReplayError(f"cannot create replay topic {topic}: {exc}") from exc
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = admin.list_topics(topic, timeout=10).topics.get(topic)
        if found is not None and found.error is None and len(found.partitions) >= partitions:
            return len(found.partitions)
        time.sleep(0.1)
    raise ReplayError(f"topic {topic} was created but is not visible after 15 s")


def replay(settings: Settings, config: ReplayConfig) -> ReplayResult:
    """Produce the archived ``config.source`` records in the time range to ``config.topic``."""
    if config.topic == settings.topic("input") and not config.into_production:
        raise ReplayError(
            f"refusing to replay into the production input topic {config.topic}: "
            "pass --into-production if that is really what you want"
        )
    table = read_archive(config.archive, config.source, config.start, config.end)
    skipped = skipped_files(table)
    pacer = Pacer(config.mode, config.value)  # validates before anything is created
    highest = pc.max(table["partition"]).as_py() if table.num_rows else 0
    partitions = ensure_topic(settings, config.topic, int(highest or 0) + 1)
    same = table.num_rows == 0 or partitions > int(highest or 0)
    if not same:
        log.warning("%s has %d partitions, the archive %d: placing records by key",
                    config.topic, partitions, int(highest or 0) + 1)
    sent, seconds = _produce(settings, config, table, pacer, same)
    return ReplayResult(config.topic, sent, seconds, same, skipped)


def _produce(settings: Settings, config: ReplayConfig, table: pa.Table, pacer: Pacer,
             same_partitions: bool) -> tuple[int, float]:
    order = replay_order(table)
    keys = table["key"].to_pylist()
    values = table["value"].to_pylist()
    headers = table["headers"].to_pylist()
    partitions = table["partition"].to_pylist()
    moments = pc.coalesce(table["timestamp_ms"], table["arrival_ms"], 0).to_pylist()
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures.append(error)

    producer = make_producer(settings, **{"linger.ms": 5})
    progress = Progress(len(order), f"replay -> {config.topic}", enabled=config.progress)
    started = time.monotonic()
    for index, row in enumerate(order.tolist()):
        wait = pacer.delay(index, moments[row])
        if wait > 0:
            _sleep_serving(producer, wait)
        extra = {"partition": partitions[row]} if same_partitions else {}
        raw_headers = headers[row]
        if raw_headers is not None:
            extra["headers"] = [(h["key"], h["value"]) for h in raw_headers]
        produce(producer, config.topic, values[row], keys[row], on_delivery=delivered, **extra)
        if index % 1000 == 0:
            producer.poll(0)
        progress.advance()
    flush_or_raise(producer, 60.0)
    seconds = time.monotonic() - started
    progress.close()
    if failures:
        raise ReplayError(f"{len(failures)} records were not delivered to {config.topic}; "
                          f"first error: {failures[0]}")
    return len(order), seconds


def _sleep_serving(producer: Producer, seconds: float) -> None:
    """Wait ``seconds`` while the producer keeps delivering."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        producer.poll(min(left, 0.1))
