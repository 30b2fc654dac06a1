"""``Embedded`` linked to a real deployment's broker: it follows the live policy from the
control topic and publishes its decisions (with their marker) on ``decisions``, never
writes to ``input``, and swaps a model's version when the registry says."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition

from rendezvous.embedded import Embedded
from rendezvous.embedded.models import BUNDLED
from rendezvous.messages import ModelVersions, Policy, decode_decision
from rendezvous.model import load_dataset
from rendezvous.registry.control import publish_entry
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


def test_follows_the_registry_to_a_new_live_version(settings: Settings,
                                                    tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(BUNDLED, models)
    # canary 2: the same graph under another version number
    shutil.copytree(models / "canary" / "1", models / "canary" / "2")
    manifest = models / "canary" / "2" / "model.yaml"
    manifest.write_text(manifest.read_text().replace("version: '1'", "version: '2'", 1))
    rows = load_dataset().X
    publish_entry(settings, ModelVersions("canary", "1"))
    policy = {"prefer": ["canary", "primary"]}
    with Embedded(models, policy, kafka=settings, publish=False,
                  follow_policy=False) as embedded:
        before = embedded.score([float(v) for v in rows[0]])
        publish_entry(settings, ModelVersions("canary", "2"))
        deadline = time.monotonic() + 30
        while (versions(embedded)["canary"] != "2" and time.monotonic() < deadline):
            time.sleep(0.05)
        after = embedded.score([float(v) for v in rows[0]])
    assert (before.model, before.version) == ("canary", "1")
    assert (after.model, after.version) == ("canary", "2")
    assert after.score == before.score  # the same graph


def versions(embedded: Embedded) -> dict[str, str]:
    return {m.name: m.version for m in embedded.stats().models}
