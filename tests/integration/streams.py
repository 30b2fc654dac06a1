"""Test helpers: produce events, read a topic back (read_committed) until enough arrived."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise, make_producer, poll_batch

_producers: dict[str, Producer] = {}


def producer_for(settings: Settings) -> Producer:
    """One warm producer per test's topics: a new idempotent producer spends its first
    hundreds of ms getting a producer id, which would count against every deadline."""
    producer = _producers.get(settings.topic_prefix)
    if producer is None:
        producer = _producers[settings.topic_prefix] = make_producer(settings)
        warm_up = settings.topic("warm-up")
        admin = AdminClient(settings.kafka_config())  # must outlive the future
        admin.create_topics([NewTopic(warm_up, 1, 1)])[warm_up].result()
        producer.produce(warm_up, b"")
        flush_or_raise(producer)
    return producer


def close_producers() -> None:
    """Flush and drop the cached producers (before the broker stops, so none keeps retrying)."""
    while _producers:
        _producers.popitem()[1].flush(5)


def produce_events(settings: Settings, events: Iterable[dict[str, Any] | bytes],
                   partitions: int = 4, first: int = 0) -> list[str]:
    """Produce events round-robin over ``partitions``; returns their ids (the key for raw bytes)."""
    producer = producer_for(settings)
    ids = []
    for i, event in enumerate(events, start=first):
        if isinstance(event, bytes):
            value, key = event, f"raw-{i}".encode()
        else:
            event = {"ts": time.time() * 1000.0, **event}
            value, key = msgspec.json.encode(event), event["id"].encode()
        producer.produce(settings.topic("input"), value, key, partition=i % partitions)
        ids.append(key.decode())
        producer.poll(0)
    flush_or_raise(producer)
    return ids


class TopicReader:
    """Reads a topic from the beginning with its own group, read_committed."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.consumer = Consumer(settings.kafka_config(**{
            "group.id": f"{settings.group('reader')}-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            # read_committed fetches can wait out fetch.wait.max.ms after a commit
            # marker (measured: visible p50 107 -> 77 ms with 10 instead of 500).
            "fetch.wait.max.ms": 10,
        }))
        self.consumer.subscribe([settings.topic(topic)])
        self.records: list[Any] = []

    def read_until(self, done: Callable[[list[Any]], bool], timeout_s: float = 60.0,
                   settle_s: float = 0.0) -> list[Any]:
        """Poll until ``done(records)`` (then ``settle_s`` more, to catch duplicates)."""
        give_up = time.monotonic() + timeout_s
        while time.monotonic() < give_up and not done(self.records):
            self._poll(0.2)
        settle_until = time.monotonic() + settle_s
        while time.monotonic() < settle_until:
            self._poll(0.2)
        return self.records

    def _poll(self, timeout_s: float) -> None:
        # poll_batch returns as soon as a record is in (consume(n, t) would wait out t).
        self.records.extend(poll_batch(self.consumer, 1000, timeout_s))

    def close(self) -> None:
        self.consumer.close()
