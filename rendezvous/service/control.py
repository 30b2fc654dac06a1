"""The live policy on the compacted control topic: publish it, read it, watch it."""

from __future__ import annotations

import logging
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from rendezvous.core.policy import check_policy
from rendezvous.messages import POLICY_KEY, Policy, decode_policy, encode
from rendezvous.settings import Settings
from rendezvous.transport.bad_records import BadRecords, where
from rendezvous.transport.clients import flush_or_raise, make_producer

log = logging.getLogger(__name__)


def publish_policy(settings: Settings, policy: Policy) -> None:
    """Make ``policy`` the live one (every running ``serve`` applies it without a restart)."""
    producer = make_producer(settings)
    producer.produce(settings.topic("control"), encode(policy), POLICY_KEY)
    flush_or_raise(producer)


class PolicyWatcher:
    """Reads the control topic from the start; :meth:`poll` returns each newer policy."""

    def __init__(self, settings: Settings) -> None:
        topic = settings.topic("control")
        # No group offsets: every reader replays the compacted topic from the start.
        self._consumer = Consumer(settings.kafka_config(**{
            "group.id": f"{settings.group('control-reader')}-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }))
        partitions = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        self._at_end: set[int] = set()
        self._n_partitions = len(partitions)
        self._bad = BadRecords("control-reader")

    def read_current(self, timeout_s: float = 10.0) -> Policy | None:
        """Block until the end of the topic; the policy in force, or None if never set."""
        latest = None
        deadline = time.monotonic() + timeout_s
        while len(self._at_end) < self._n_partitions and time.monotonic() < deadline:
            found = self.poll(0.2)
            latest = found or latest
        return latest

    def poll(self, timeout_s: float = 0.0) -> Policy | None:
        """The newest policy among records available now, or None."""
        latest = None
        for record in self._consumer.consume(100, timeout_s):
            error = record.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    self._at_end.add(record.partition())
                else:
                    log.warning("control topic: %s", error)
                continue
            if record.key() != POLICY_KEY or record.value() is None:
                continue
            try:
                policy = decode_policy(record.value())
                check_policy(policy)
            except ValueError as exc:  # Undecodable or PolicyError: keep the policy in force
                self._bad.skip("control", where(record), f"ignoring this policy: {exc}")
                continue
            latest = policy
        return latest

    def close(self) -> None:
        self._consumer.close()


def read_policy(settings: Settings) -> Policy | None:
    """The policy in force, read from the control topic (None: the default applies)."""
    watcher = PolicyWatcher(settings)
    try:
        return watcher.read_current()
    finally:
        watcher.close()
