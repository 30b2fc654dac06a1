"""Produce events to a test's input topic, with one warm producer per set of topics."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import msgspec
from confluent_kafka import Producer

from rendezvous.demo.workload import warm_producer
from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise

_producers: dict[str, Producer] = {}


def producer_for(settings: Settings) -> Producer:
    """One warm producer per set of topics (see :func:`~rendezvous.demo.workload.warm_producer`)."""
    producer = _producers.get(settings.topic_prefix)
    if producer is None:
        producer = _producers[settings.topic_prefix] = warm_producer(settings)
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
