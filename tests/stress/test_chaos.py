"""Chaos: every component killed with SIGKILL under load in turn, then the broker
restarted; afterwards every request has exactly one result and an archive row.

Each test starts a local Kafka + Redis of its own, so restarting the broker never
disturbs the session's broker the other tests share.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from rendezvous import local
from rendezvous.local.processes import alive
from rendezvous.local.stack import read, restart_broker
from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise, make_producer
from rendezvous.transport.connect import kafka_config
from rendezvous.transport.reader import OFFSET_STORED, TopicReader
from tests.stress.chaos.harness import EVERY, run_chaos
from tests.stress.chaos.report import CLUSTER_BROKER, ChaosConfig, ChaosResult, to_markdown

pytestmark = pytest.mark.integration


def _topic_with_records(settings: Settings, topic: str, n: int) -> None:
    admin = AdminClient(kafka_config(settings))
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result()
    producer = make_producer(settings)
    for i in range(n):
        producer.produce(topic, f"v{i}".encode(), f"k{i}".encode(), partition=i % 2)
    flush_or_raise(producer)


def _read_all(settings: Settings, topic: str, group: str, commit: bool = False) -> list[bytes]:
    """Both partitions from ``group``'s committed offsets (else the beginning) to their end."""
    with TopicReader(settings, topic, OFFSET_STORED, group=group) as reader:
        values = [record.value() for record in reader.read_to_end(30)]
        if commit:
            reader.commit()
    return values


@pytest.mark.timeout(300)
def test_restart_broker_keeps_ports_topics_and_offsets(tmp_path: Path) -> None:
    stack = Settings(state_dir=tmp_path / "state")
    first = local.up(stack)
    seen = [first.kafka_pid, first.redis_pid]
    try:
        settings = stack.with_endpoints(first.bootstrap_servers, first.redis_url)
        topic, group = f"restart-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
        _topic_with_records(settings, topic, 10)
        assert len(_read_all(settings, topic, group, commit=True)) == 10

        for kill in (False, True):  # a clean stop, then a crash
            before = read(stack)
            assert before is not None
            after = restart_broker(stack, kill=kill)
            seen.append(after.kafka_pid)
            assert not alive(before.kafka_pid)
            assert after.kafka_pid != before.kafka_pid and alive(after.kafka_pid)
            # same address, same Redis, the new pid recorded for `down`
            assert after.bootstrap_servers == first.bootstrap_servers
            assert after.redis_pid == first.redis_pid and alive(first.redis_pid)
            assert json.loads((stack.state_dir / "pids.json").read_text())["kafka"] \
                == after.kafka_pid
            assert local.status(stack)["kafka"].startswith("running")
            # not formatted again: the records and the group's committed offsets survived
            assert len(_read_all(settings, topic, f"fresh-{kill}")) == 10
            assert _read_all(settings, topic, group) == []
    finally:
        local.down(stack)
    assert not [pid for pid in seen if alive(pid)]


def _assert_exactly_once_and_archived(result: ChaosResult, report: str,
                                      server_pids: int) -> None:
    """Nothing lost, duplicated or missing from the archive; every window answered; nothing
    left running (``server_pids``: brokers and Redis the run started, restarts included)."""
    assert result.produce_failures == 0
    assert result.accepted == result.produced > 0
    assert not result.lost, f"{len(result.lost)} requests without a result: {result.lost[:5]}"
    assert not result.duplicated, f"answered twice: {list(result.duplicated.items())[:5]}"
    assert not result.unexpected
    assert not result.missing_from_archive, f"not archived: {result.missing_from_archive[:5]}"
    assert result.archived == result.accepted
    # The pipeline answered through every fault, not only after it.
    assert all(r.requests > 0 for r in result.phases), report
    assert sum(r.statuses.get("ok", 0) for r in result.phases) > 0
    # serve may exit by itself (and is restarted) when a transaction call hangs after the
    # broker restart (see serve.stuck_commit_s); a static member the broker fenced during
    # the failover exits by design (README: a consumer's fatal error ends the component,
    # its supervisor restarts it) -- seen once in five runs for the workers on 3 brokers.
    # Nothing else may.
    unexpected = [crash.name for crash in result.crashes
                  if crash.name != "serve-0" and "Static consumer fenced" not in crash.log_tail]
    assert not unexpected, report
    # Nothing left running: every component and every broker/Redis the run started.
    assert result.pids and not [pid for pid in result.pids if alive(pid)]
    assert len(result.server_pids) == server_pids
    assert not [pid for pid in result.server_pids if alive(pid)]


@pytest.mark.timeout(600)
def test_chaos_exactly_once_and_archive_complete(tmp_path: Path) -> None:
    """What `make bench` runs (EVERY: the monitor on and killed too), shorter and slower."""
    config = dataclasses.replace(EVERY, rate_per_s=50, deadline_ms=500, steady_s=3,
                                 outage_s=0.5, settle_s=3, answer_timeout_s=90)
    result = run_chaos(tmp_path, config, own_stack=True)
    report = to_markdown(result, "pytest tests/stress/test_chaos.py")
    print(report)

    assert [p.phase.name for p in result.phases] == [
        "steady", "primary", "canary", "decoy", "serve-0", "monitor", "broker",
        "steady (after)"]
    assert "a local single-node broker" in report
    _assert_exactly_once_and_archived(result, report, 3)  # broker, Redis, restarted broker


@pytest.mark.timeout(420)
def test_three_brokers_one_killed_under_load(tmp_path: Path) -> None:
    """Issue 16: `local up --brokers 3` (RF 3, min.insync.replicas 2 from topics.yaml); the
    broker leading the most input partitions is killed -9 under load and restarted 5 s
    later: nothing lost or duplicated, the archive complete, the delay reported."""
    config = ChaosConfig(rate_per_s=50, deadline_ms=500, warmup_s=4, steady_s=3, outage_s=5,
                         settle_s=5, answer_timeout_s=90, brokers=3, faults=(CLUSTER_BROKER,))
    result = run_chaos(tmp_path, config, own_stack=True)
    report = to_markdown(result, "pytest tests/stress/test_chaos.py")
    print(report)

    assert [p.phase.name for p in result.phases] == [
        "warm-up", "steady", CLUSTER_BROKER, "steady (after)"]
    [note] = result.notes
    assert "replication factor [3], min.insync.replicas 2" in note, note
    _assert_exactly_once_and_archived(result, report, 5)  # 3 brokers, Redis, the restarted one
