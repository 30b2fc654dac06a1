"""``Embedded`` linked to a real deployment's broker: it follows the live policy from the
control topic and publishes its decisions (with their marker) on ``decisions``, and never
writes to ``input``."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import TopicPartition

from rendezvous.embedded import Embedded
from rendezvous.messages import Policy, decode_decision
from rendezvous.model import load_dataset
from rendezvous.service.control import publish_policy
from rendezvous.settings import Settings
from rendezvous.transport.clients import make_consumer, poll_batch

pytestmark = pytest.mark.integration

CALLS = 50


def ends(settings: Settings, logical: str) -> int:
    consumer = make_consumer(settings, settings.group("ends"))
    topic = settings.topic(logical)
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    total = sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in partitions)
    consumer.close()
    return total


def test_follows_the_live_policy_and_publishes_decisions_never_inputs(
        settings: Settings) -> None:
    rows = load_dataset().X
    with Embedded(kafka=settings) as embedded:
        assert embedded.policy.prefer == ["primary", "canary"]  # nothing published yet
        first = embedded.score([float(v) for v in rows[0]], id="before")
        publish_policy(settings, Policy(prefer=["canary", "primary"], deadline_ms=80),
                       actor="test")
        deadline = time.monotonic() + 30
        while embedded.policy.prefer[0] != "canary" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert embedded.policy.prefer == ["canary", "primary"]
        results = [embedded.score([float(v) for v in rows[i]], id=f"e{i}")
                   for i in range(CALLS)]
    assert first.model == "primary"
    assert {r.model for r in results} == {"canary"}
    stats = embedded.stats()
    assert (stats.published, stats.publish_dropped) == (CALLS + 1, 0)

    consumer = make_consumer(settings, settings.group("check-decisions"))
    consumer.subscribe([settings.topic("decisions")])
    found = {}
    deadline = time.monotonic() + 30
    while len(found) < CALLS + 1 and time.monotonic() < deadline:
        for record in poll_batch(consumer, 500, 0.5):
            assert ("rendezvous.source", b"embedded") in (record.headers() or [])
            decision = decode_decision(record.value())
            found[decision.id] = decision
    consumer.close()
    assert sorted(found) == sorted(["before"] + [f"e{i}" for i in range(CALLS)])
    assert found["e3"].chosen == "canary"
    assert ends(settings, "input") == 0

    # A second Embedded starts with the policy in force on the control topic.
    with Embedded(kafka=settings, publish=False) as later:
        assert later.policy.prefer == ["canary", "primary"] and later.policy.deadline_ms == 80
