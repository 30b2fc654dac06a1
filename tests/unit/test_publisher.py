"""serve's default Kafka sink (dedup): offsets committed only behind acknowledged results.

The producer and consumer are stand-ins that record what they are asked and
acknowledge when the test says, so no broker is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from confluent_kafka import KafkaError, TopicPartition

from rendezvous.messages import Scored
from rendezvous.service.ports import Redo
from rendezvous.service.publisher import Publisher


class ProducerStandIn:
    def __init__(self) -> None:
        self.waiting: list[Callable[[KafkaError | None, Any], None]] = []

    def produce(self, topic: str, value: bytes, key: bytes, **options: Any) -> None:
        self.waiting.append(options["on_delivery"])

    def ack(self, error: KafkaError | None = None) -> None:
        for delivered in self.waiting:
            delivered(error, None)
        self.waiting.clear()

    def poll(self, _timeout: float) -> int:
        return 0

    def flush(self, _timeout: float) -> int:
        self.ack()
        return 0


class ConsumerStandIn:
    def __init__(self) -> None:
        self.commits: list[list[tuple[str, int, int]]] = []

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self.commits.append([(tp.topic, tp.partition, tp.offset) for tp in offsets])


def make() -> tuple[Publisher, ProducerStandIn, ConsumerStandIn, list[tuple[str, Scored]]]:
    producer, consumer, delivered = ProducerStandIn(), ConsumerStandIn(), []

    def deliver(replies: Sequence[tuple[str, Scored]]) -> None:
        delivered.extend(replies)

    publisher = Publisher(consumer, producer, deliver, commit_interval_s=0.0)  # type: ignore[arg-type]
    return publisher, producer, consumer, delivered


def test_offsets_and_replies_wait_for_the_acknowledgements() -> None:
    publisher, producer, consumer, delivered = make()
    publisher.write(("scored", b"{}", b"r1", 0, None))
    publisher.reply("caller", Scored("r1", "ok"))
    publisher.end_step(lambda: [TopicPartition("input", 0, 7)])
    publisher.end_step(None)
    assert consumer.commits == []
    producer.ack()
    publisher.end_step(None)
    publisher.close()  # waits for the replies' thread
    assert consumer.commits == [[("input", 0, 7)]]
    assert [(to, r.id) for to, r in delivered] == [("caller", "r1")]


def test_a_failed_delivery_asks_for_a_redo_and_commits_nothing() -> None:
    publisher, producer, consumer, _ = make()
    publisher.write(("scored", b"{}", b"r1", 0, None))
    publisher.end_step(lambda: [TopicPartition("input", 0, 3)])
    producer.ack(KafkaError(KafkaError._MSG_TIMED_OUT))
    with pytest.raises(Redo):
        publisher.end_step(None)
    publisher.discard()
    publisher.commit_all([TopicPartition("input", 0, 1)])  # nothing in flight: commits
    assert consumer.commits == [[("input", 0, 1)]]
