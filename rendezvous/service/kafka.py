"""The Kafka :class:`~.ports.Source` of serve: one consumer group over ``input`` and ``scores``.

The ``range`` assignor gives one member the same partition numbers of both
co-partitioned topics; a rebalance inside :meth:`KafkaSource.poll` is reported
to the loop (its listener) in input partition numbers. On assignment the
answered ids come back from the same partition of ``scored`` (:mod:`.recovery`);
the live policy from the control topic (:mod:`.control`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from prometheus_client import Gauge

from rendezvous.messages import Policy
from rendezvous.metrics import LagProbe
from rendezvous.service.control import PolicyWatcher
from rendezvous.service.ports import Listener
from rendezvous.service.recovery import answered_ids
from rendezvous.settings import Settings
from rendezvous.transport.clients import make_consumer, poll_batch

LAG = Gauge("rendezvous_serve_lag", "Input and score records not consumed yet, when sampled")


def serve_consumer(settings: Settings, instance_id: str) -> Consumer:
    """serve's consumer: the ``range`` assignor, static membership as ``instance_id``."""
    group = settings.group("rendezvous")
    return make_consumer(settings, group, **{
        "partition.assignment.strategy": "range",
        "group.instance.id": f"{group}-{instance_id}",
        "isolation.level": "read_committed",
    })


class KafkaSource:
    """``input`` and ``scores`` through ``consumer``; ``on_assigned`` runs after each
    assignment is rebuilt (the ready signal)."""

    def __init__(self, settings: Settings, consumer: Consumer,
                 on_assigned: Callable[[], None] = lambda: None) -> None:
        self.settings, self.consumer, self.on_assigned = settings, consumer, on_assigned
        self.input_topic = settings.topic("input")
        self.watcher = PolicyWatcher(settings)
        self.lag = LagProbe(consumer, LAG)
        self.listener: Listener | None = None

    def open(self, listener: Listener) -> None:
        self.listener = listener
        self.consumer.subscribe([self.input_topic, self.settings.topic("scores")],
                                on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_lost)

    def poll(self, max_records: int, timeout_s: float) -> Sequence[Message]:
        records = poll_batch(self.consumer, max_records, timeout_s)
        self.lag.maybe_update()
        return records

    def rewind(self) -> dict[int, int | None]:
        committed = self.consumer.committed(self.consumer.assignment(), timeout=30)
        for tp in committed:
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self.consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
        return self._inputs(committed)

    def answered(self, committed: Mapping[int, int | None]) -> dict[int, set[str]]:
        return answered_ids(self.settings, committed)

    def current_policy(self) -> Policy | None:
        return self.watcher.read_current()

    def new_policy(self) -> Policy | None:
        return self.watcher.poll()

    def close(self) -> None:
        self.consumer.close()
        self.watcher.close()

    def _inputs(self, offsets: list[TopicPartition]) -> dict[int, int | None]:
        return {tp.partition: tp.offset for tp in offsets if tp.topic == self.input_topic}

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        assert self.listener is not None
        self.listener.assigned(self._inputs(consumer.committed(partitions, timeout=30)))
        self.on_assigned()

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        assert self.listener is not None
        self.listener.revoked(sorted(self._inputs(partitions)))

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        assert self.listener is not None
        self.listener.lost({tp.partition for tp in partitions})
