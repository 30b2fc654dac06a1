"""Round trips through the real broker and Redis, and topics.yaml applied to the cluster."""

from __future__ import annotations

import time

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise, make_consumer, make_producer, poll_batch
from rendezvous.transport.connect import kafka_config, redis_client
from rendezvous.transport.errors import TopicMismatch
from rendezvous.transport.topics import apply_topics, describe_topics, load_specs

pytestmark = pytest.mark.integration


def test_thousand_messages_round_trip_none_lost(settings: Settings) -> None:
    topic = settings.topic("input")
    producer = make_producer(settings)
    sent = {f"k{i}".encode(): f"v{i}".encode() for i in range(1000)}
    for key, value in sent.items():
        producer.produce(topic, value, key)
    flush_or_raise(producer)

    consumer = make_consumer(settings, settings.group("roundtrip"))
    consumer.subscribe([topic])
    received: dict[bytes, bytes] = {}
    deadline = time.monotonic() + 30
    while len(received) < len(sent) and time.monotonic() < deadline:
        for record in poll_batch(consumer, 500, 0.5):
            received[record.key()] = record.value()
    consumer.close()
    assert received == sent


def test_topics_apply_twice_is_a_noop(settings: Settings) -> None:
    # the fixture applied once already
    assert apply_topics(settings) == []
    listed = {name: partitions for name, _full, partitions, _p in describe_topics(settings)}
    specs = load_specs(settings)
    assert listed == {name: spec.partitions for name, spec in specs.items()}


def test_partition_count_mismatch_is_reported(stack: tuple[str, str], prefix: str,
                                              settings: Settings) -> None:
    other = settings.model_copy(update={"topic_prefix": prefix + "x."})
    admin = AdminClient(kafka_config(other))
    wrong = NewTopic(other.topic("scores"), 1, 1)
    admin.create_topics([wrong])[other.topic("scores")].result()
    _wait_until_listed(admin, other.topic("scores"))
    with pytest.raises(TopicMismatch) as raised:
        apply_topics(other)
    message = str(raised.value)
    assert f"{other.topic('scores')} has 1 partitions, topics.yaml declares 4" in message
    # nothing was created while the declaration is violated
    assert other.topic("input") not in admin.list_topics(timeout=10).topics


def test_cleanup_policy_mismatch_is_reported(settings: Settings) -> None:
    other = settings.model_copy(update={"topic_prefix": settings.topic_prefix + "y."})
    admin = AdminClient(kafka_config(other))
    admin.create_topics([NewTopic(other.topic("control"), 1, 1)])[other.topic("control")].result()
    _wait_until_listed(admin, other.topic("control"))
    with pytest.raises(TopicMismatch, match="cleanup.policy=delete, topics.yaml declares compact"):
        apply_topics(other)


def test_redis_set_get_publish(settings: Settings) -> None:
    client = redis_client(settings)
    key = f"{settings.topic_prefix}k"
    client.set(key, b"value", ex=10)
    assert client.get(key) == b"value"
    pubsub = client.pubsub()
    pubsub.subscribe(key)
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"
    assert client.publish(key, b"hello") == 1
    message = pubsub.get_message(timeout=2)
    assert message["data"] == b"hello"
    pubsub.close()


def _wait_until_listed(admin: AdminClient, topic: str) -> None:
    """Metadata lags topic creation by a moment; a pre-existing topic is the real case."""
    deadline = time.monotonic() + 10
    while topic not in admin.list_topics(timeout=10).topics:
        assert time.monotonic() < deadline, f"{topic} never appeared"
        time.sleep(0.05)
