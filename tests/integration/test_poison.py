"""Issue 18: hostile records on every topic the pipeline reads, through the real broker.

One small record once stopped every worker and serve on every restart. Here such
records sit between valid requests: every component stays up, every valid request
is answered, every bad input is rejected once with one dead letter, and bad score
and control records are skipped and counted.
"""

from __future__ import annotations

import collections
import time
import urllib.request
from pathlib import Path

import msgspec
import pytest
from confluent_kafka import KafkaException

from rendezvous.demo.topic_records import TopicRecords
from rendezvous.local.pipeline import metrics_endpoints
from rendezvous.local.processes import alive
from rendezvous.local.supervisor import Supervisor
from rendezvous.messages import MAX_INPUT_BYTES, POLICY_KEY, decode_scored
from rendezvous.model import sample_events
from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise
from tests.streams import producer_for

pytestmark = pytest.mark.integration

POISON: dict[bytes, bytes] = {
    b"brackets": b"[" * 1200 + b"\n",
    b"deep-objects": b'{"a":' * 5000 + b"1" + b"}" * 5000,
    b"deep-features": b'{"id":"deep","features":' + b"[" * 5000 + b"]" * 5000 + b"}",
    b"big": b'{"id":"big","features":[1],"pad":"' + b"x" * (MAX_INPUT_BYTES + 1000) + b'"}',
    b"long-id": b'{"id":"' + b"i" * 100_000 + b'","features":[1]}',
    b"\xff\xfe-bad-utf8-key": b'{"id":"\xff\xfe","features":[1]}',
    b"surrogate": b'{"id":"a\\ud800","features":[1]}',
}


def _metric(url: str, name: str, labels: str) -> float:
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name) and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.timeout(240)
def test_poison_between_valid_requests(settings: Settings, supervisor: Supervisor,
                                       tmp_path: Path) -> None:
    for name, args in (("primary", ["worker", "--model", "primary", "--metrics-port", "0"]),
                       ("canary", ["worker", "--model", "canary", "--metrics-port", "0"]),
                       ("serve", ["serve", "--metrics-port", "0"]),
                       ("decoy", ["decoy", "--archive", str(tmp_path / "archive")]),
                       ("monitor", ["monitor", "--metrics-port", "0", "--window-s", "2"])):
        supervisor.start(name, args)
    producer = producer_for(settings)
    valid = [{**e, "deadline_ms": 5000} for e in sample_events(40, seed=21)]
    poison = list(POISON.items())
    input_topic = settings.topic("input")
    for i, event in enumerate(valid):
        producer.produce(input_topic, msgspec.json.encode(event), event["id"], partition=i % 4)
        if i % 5 == 0 and poison:
            key, value = poison.pop()
            producer.produce(input_topic, value, key, partition=i % 4)
    # The same kind of bytes where the rendezvous reads scores and the policy.
    for p in range(4):
        producer.produce(settings.topic("scores"), POISON[b"brackets"], b"x", partition=p)
        producer.produce(settings.topic("scores"), POISON[b"deep-objects"], b"y", partition=p)
    producer.produce(settings.topic("control"), POISON[b"deep-objects"], POLICY_KEY)
    producer.produce(settings.topic("control"), b'{"prefer":[]}', POLICY_KEY)  # not applicable
    flush_or_raise(producer)
    # A 2 MB record never reaches the pipeline: Kafka refuses it (1 MB by default).
    with pytest.raises(KafkaException, match="MSG_SIZE_TOO_LARGE"):
        producer.produce(input_topic, b'{"id":"huge","pad":"' + b"x" * (2 << 20) + b'"}')

    expected = len(valid) + len(POISON)
    reader = TopicRecords(settings, "scored")
    records = reader.read_until(lambda rs: len(rs) >= expected, 90, settle_s=2.0)
    reader.close()
    results = collections.defaultdict(list)
    for record in records:
        scored = decode_scored(record.value())
        results[scored.id].append(scored)
    for event in valid:
        [answer] = results[event["id"]]
        assert answer.status == "ok" and answer.model == "primary", answer
    rejected = [r for rs in results.values() for r in rs if r.status == "rejected"]
    assert len(rejected) == len(POISON), [r.id[:40] for r in rejected]
    assert all(len(rs) == 1 for rs in results.values()), "a request answered twice"

    letters = TopicRecords(settings, "deadletter")
    dead = letters.read_until(lambda rs: len(rs) >= len(POISON), 30, settle_s=1.0)
    letters.close()
    assert len(dead) == len(POISON)
    reasons = [dict(r.headers())["rendezvous.reason"].decode() for r in dead]
    assert all(reasons), reasons
    assert any("more than" in r for r in reasons)  # the oversized input and the long id

    # Everything still up, and the bad score records counted, not fatal.
    time.sleep(1.0)
    assert all(alive(c.pid) for c in supervisor.components.values())
    serve_metrics = metrics_endpoints(supervisor)["serve"]
    assert _metric(serve_metrics, "rendezvous_bad_records_total",
                   'component="serve",topic="scores"') == 8
    assert "ignoring this policy" in supervisor.components["serve"].log.read_text()
    monitor = metrics_endpoints(supervisor)["monitor"]
    assert _metric(monitor, "rendezvous_monitor_invalid_total", 'topic="input"') == len(POISON)
