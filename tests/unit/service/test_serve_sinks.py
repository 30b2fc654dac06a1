"""serve's Kafka sinks: offsets committed only behind acknowledged results (dedup), or in
one transaction with them (transactions).

The producer and consumer are stand-ins that record what they are asked and
acknowledge when the test says, so no broker is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from rendezvous.messages import Scored
from rendezvous.service.committer import TransactionSink
from rendezvous.service.ports import Position, Redo
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

    def consumer_group_metadata(self) -> object:
        return "group"


class TransactionalStandIn(ProducerStandIn):
    """Records each committed transaction; ``abort_next`` makes the next commit fail."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[Any] = []
        self.transactions: list[list[Any]] = []
        self.abort_next = False

    def init_transactions(self, _timeout: float) -> None:
        pass

    def begin_transaction(self) -> None:
        self.open = []

    def produce(self, topic: str, value: bytes, key: bytes, **options: Any) -> None:
        self.open.append(key)

    def send_offsets_to_transaction(self, offsets: list[TopicPartition], metadata: object,
                                    _timeout: float) -> None:
        self.open.extend((tp.topic, tp.offset, metadata) for tp in offsets)

    def commit_transaction(self, _timeout: float) -> None:
        if self.abort_next:
            self.abort_next = False
            raise KafkaException(KafkaError(KafkaError._FENCED, "fenced", txn_requires_abort=True))
        self.transactions.append(self.open)

    def abort_transaction(self, _timeout: float) -> None:
        self.open = []


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
    publisher.end_step(lambda: [Position("input", 0, 7)])
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
    publisher.end_step(lambda: [Position("input", 0, 3)])
    producer.ack(KafkaError(KafkaError._MSG_TIMED_OUT))
    with pytest.raises(Redo):
        publisher.end_step(None)
    publisher.discard()
    publisher.commit_all([Position("input", 0, 1)])  # nothing in flight: commits
    assert consumer.commits == [[("input", 0, 1)]]


def test_transactions_commit_records_offsets_then_reply() -> None:
    producer, delivered = TransactionalStandIn(), []
    sink = TransactionSink(ConsumerStandIn(), producer, delivered.extend,  # type: ignore[arg-type]
                           interval_ms=0.0, stuck_s=5.0)
    sink.write(("scored", b"{}", b"r1", 0, None))
    sink.reply("caller", Scored("r1", "ok"))
    assert not sink.end_step(None)  # nothing new to account for: no transaction
    assert sink.end_step(lambda: [Position("input", 0, 4)])
    sink.commit_all([])  # waits for the one in flight
    assert producer.transactions == [[b"r1", ("input", 4, "group")]]
    assert [(to, r.id) for to, r in delivered] == [("caller", "r1")]

    producer.abort_next = True
    sink.write(("scored", b"{}", b"r2", 0, None))
    assert sink.end_step(lambda: [Position("input", 0, 5)])
    sink.commit_all([])
    with pytest.raises(Redo):  # its decisions never reached Kafka: decide them again
        sink.end_step(None)
    sink.close()
    assert len(producer.transactions) == 1
