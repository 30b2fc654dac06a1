"""The bare relay: the pipeline's topology with no logic, the ceiling of the benchmarks.

    python bench/relay.py worker --name a      # input -> scores, same bytes, same partition
    python bench/relay.py rendezvous           # scores -> scored, first record per id

Each role is its own process and consumer group, like the pipeline's. A
pass-through worker runs the worker's own consume loop
(:func:`rendezvous.transport.relay.consume_loop`: micro-batches of up to 512,
2 ms poll wait, offsets committed once the batch is acknowledged) and copies
each input record's key and bytes to the scores topic on the same partition
number: no decode, no inference. The pass-through rendezvous reads scores
(2 ms poll wait, batches of up to 1000, like ``serve``) and writes the first
record of every request id to the scored topic on the same partition,
committing offsets every 5 ms: no decode, no policy, no transaction, no
decisions topic. Clients come from :mod:`rendezvous.transport.clients`, so
linger, fetch wait and acks are the pipeline's. Kafka and topics come from
the environment, as for every ``rendezvous`` command.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from confluent_kafka import Message

from rendezvous.readiness import announce_ready
from rendezvous.settings import Settings
from rendezvous.transport.clients import (
    Stopper,
    make_consumer,
    make_producer,
    next_offsets,
    poll_batch,
)
from rendezvous.transport.relay import consume_loop

REMEMBER = 1_000_000
"""Request ids the pass-through rendezvous remembers (oldest forgotten first)."""


def worker(settings: Settings, name: str, max_batch: int = 512, max_wait_ms: float = 2.0) -> None:
    """Copy input records to scores, same key, bytes and partition number."""
    producer = make_producer(settings)
    consumer = make_consumer(settings, settings.group(f"relay-worker-{name}"))
    out = settings.topic("scores")

    def handle(records: list[Message], on_delivery: Callable[..., None]) -> int:
        produce = producer.produce
        for record in records:
            produce(out, record.value(), record.key(), partition=record.partition(),
                    on_delivery=on_delivery)
        return len(records)

    consume_loop(consumer, producer, settings.topic("input"), handle,
                 max_batch=max_batch, max_wait_s=max_wait_ms / 1000.0, stopper=Stopper(),
                 on_first_assign=lambda: announce_ready("relay-worker", f"name={name}"))


def rendezvous(settings: Settings, max_batch: int = 1000, max_wait_ms: float = 2.0,
               commit_interval_ms: float = 5.0) -> None:
    """Copy the first score record of each request id to scored, same partition number."""
    producer = make_producer(settings, **{"linger.ms": 0})
    consumer = make_consumer(settings, settings.group("relay-rendezvous"))
    out = settings.topic("scored")
    stopper = Stopper()
    answered: OrderedDict[bytes, None] = OrderedDict()
    consumer.subscribe([settings.topic("scores")],
                       on_assign=lambda _c, _p: announce_ready("relay-rendezvous"))
    produce, commit_at, pending = producer.produce, 0.0, []
    try:
        while not stopper.stopped:
            records = poll_batch(consumer, max_batch, max_wait_ms / 1000.0)
            for record in records:
                key = record.key()
                if key in answered:
                    continue
                answered[key] = None
                produce(out, record.value(), key, partition=record.partition())
            if len(answered) > REMEMBER:
                for _ in range(len(answered) - REMEMBER):
                    answered.popitem(last=False)
            producer.poll(0)
            pending.extend(records)
            now = time.monotonic()
            if pending and now >= commit_at:
                consumer.commit(offsets=next_offsets(pending), asynchronous=True)
                pending.clear()
                commit_at = now + commit_interval_ms / 1000.0
    finally:
        producer.flush(10)
        consumer.close()


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description="The bare relay (no logic), one role.")
    parser.add_argument("role", choices=["worker", "rendezvous"])
    parser.add_argument("--name", default="a", help="worker name (its own consumer group)")
    args = parser.parse_args()
    settings = Settings()
    if args.role == "worker":
        worker(settings, args.name)
    else:
        rendezvous(settings)


if __name__ == "__main__":
    main()
