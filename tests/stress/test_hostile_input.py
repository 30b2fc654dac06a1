"""Issue 16: fuzzed, oversized and hostile records through the real broker.

10,000 generated invalid payloads between valid requests: each gets exactly one
``rejected`` result and one dead letter, the valid ones are answered normally. Then
records too big for Kafka, a 100,000-character id and a flood of 100,000 score records
for ids nobody asked about: clear refusals and dead letters, serve's memory stays
within its stated bound, and the pipeline goes on.
"""

from __future__ import annotations

import collections
import time
from pathlib import Path

import msgspec
import pytest
from confluent_kafka import KafkaError, KafkaException

from rendezvous.demo.topic_records import TopicRecords
from rendezvous.local.pipeline import metrics_endpoints
from rendezvous.local.processes import alive
from rendezvous.local.supervisor import Supervisor
from rendezvous.messages import (
    MAX_ID_LENGTH,
    MAX_INPUT_BYTES,
    Invalid,
    decode_input,
    decode_scored,
    encode,
)
from rendezvous.messages import Score as ScoreMessage
from rendezvous.model import sample_events
from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise, make_producer
from tests.fuzz import payloads
from tests.integration.test_poison import _metric
from tests.streams import producer_for

pytestmark = pytest.mark.integration

FUZZED = 10_000
ORPHANS = 100_000
ORPHAN_RSS_LIMIT_MB = 150
"""Stated bound for the flood below: 100,000 orphan scores of ~200 bytes held by serve
(each partition holds at most ``max_orphans`` = 100,000 of them for ``orphan_ttl_ms`` =
60 s; a score record is at most ``MAX_SCORE_BYTES``)."""


def _start(supervisor: Supervisor) -> None:
    for name, args in (("primary", ["worker", "--model", "primary"]),
                       ("canary", ["worker", "--model", "canary"]),
                       ("serve", ["serve", "--metrics-port", "0"])):
        supervisor.start(name, args)


def _invalid_payloads(n: int) -> list[tuple[bytes, bytes, str]]:
    """``n`` generated payloads the input decoder rejects, as (key, value, id of the
    result); ids are unique (a salvaged id stands for the record, else the key)."""
    chosen: list[tuple[bytes, bytes, str]] = []
    seen: set[str] = set()
    for i, value in enumerate(payloads(4 * n, seed=1616)):
        decoded = decode_input(value)
        key = b"fuzz-%06d" % i
        if not isinstance(decoded, Invalid):
            continue
        rid = decoded.id or key.decode()
        if rid in seen:
            continue
        seen.add(rid)
        chosen.append((key, value, rid))
        if len(chosen) == n:
            return chosen
    raise AssertionError(f"only {len(chosen)} distinct invalid payloads")


def _valid(n: int, prefix: str) -> list[dict[str, object]]:
    return [{**e, "id": f"{prefix}{i}", "deadline_ms": 10_000}
            for i, e in enumerate(sample_events(n, seed=16))]


def _results(settings: Settings, expected: int, timeout_s: float) -> dict[str, list[str]]:
    reader = TopicRecords(settings, "scored")
    try:
        records = reader.read_until(lambda rs: len(rs) >= expected, timeout_s, settle_s=2.0)
    finally:
        reader.close()
    results: dict[str, list[str]] = collections.defaultdict(list)
    for record in records:
        scored = decode_scored(record.value())
        results[scored.id].append(scored.status)
    return results


def _dead_letters(settings: Settings, expected: int, timeout_s: float) -> list[tuple[bytes, str]]:
    letters = TopicRecords(settings, "deadletter")
    try:
        dead = letters.read_until(lambda rs: len(rs) >= expected, timeout_s, settle_s=1.0)
    finally:
        letters.close()
    return [(r.key() or b"", dict(r.headers() or [])["rendezvous.reason"].decode()) for r in dead]


@pytest.mark.timeout(240)
def test_10k_fuzzed_payloads_between_valid_requests(settings: Settings,
                                                   supervisor: Supervisor) -> None:
    _start(supervisor)
    fuzzed = _invalid_payloads(FUZZED)
    valid = _valid(200, "ok-")
    producer = producer_for(settings)
    topic = settings.topic("input")
    started = time.monotonic()
    for i, (key, value, _rid) in enumerate(fuzzed):
        producer.produce(topic, value, key, partition=i % 4)
        if i % 50 == 0:
            event = {**valid[i // 50], "ts": time.time() * 1000.0}
            producer.produce(topic, msgspec.json.encode(event), str(event["id"]).encode(),
                             partition=i % 4)
        producer.poll(0)
    flush_or_raise(producer)

    results = _results(settings, len(fuzzed) + len(valid), 120)
    took = time.monotonic() - started
    for event in valid:
        assert results[str(event["id"])] in (["ok"], ["fallback"]), event["id"]
    wrong = {rid: results.get(rid) for _k, _v, rid in fuzzed if results.get(rid) != ["rejected"]}
    assert not wrong, f"{len(wrong)} fuzzed payloads not rejected exactly once: " \
                      f"{list(wrong.items())[:5]}"
    assert len(results) == len(fuzzed) + len(valid), "a result for a request nobody sent"

    dead = _dead_letters(settings, len(fuzzed), 60)
    assert sorted(key for key, _reason in dead) == sorted(key for key, _v, _rid in fuzzed)
    assert all(reason for _key, reason in dead)
    assert all(alive(c.pid) for c in supervisor.components.values())
    print(f"{len(fuzzed)} fuzzed + {len(valid)} valid answered in {took:.1f} s")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.mark.timeout(240)
def test_oversized_records_long_ids_and_an_orphan_flood(settings: Settings,
                                                        supervisor: Supervisor) -> None:
    _start(supervisor)
    topic = settings.topic("input")
    # 2 MB: decision — Kafka's default 1 MB limit stays (topics.yaml does not raise it).
    # The default producer refuses it at once, with a clear error...
    producer = producer_for(settings)
    huge = b'{"id":"huge","features":[1],"pad":"' + b"x" * (2 << 20) + b'"}'
    with pytest.raises(KafkaException, match="MSG_SIZE_TOO_LARGE"):
        producer.produce(topic, huge, b"huge")
    # ... and a producer whose own limit was raised is refused by the broker.
    errors: list[KafkaError] = []
    big_producer = make_producer(settings, **{"message.max.bytes": 4 << 20})
    big_producer.produce(topic, huge, b"huge", partition=0,
                         on_delivery=lambda err, _msg: errors.append(err))
    big_producer.flush(30)
    assert len(errors) == 1 and errors[0] is not None
    assert errors[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, errors[0]

    # Under Kafka's limit but over ours: rejected unparsed; a 100,000-character id too.
    near_limit = b'{"id":"near","features":[1],"pad":"' + b"x" * (MAX_INPUT_BYTES + 4096) + b'"}'
    long_id = b'{"id":"' + b"i" * 100_000 + b'","features":[1]}'
    producer.produce(topic, near_limit, b"near", partition=1)
    producer.produce(topic, long_id, b"long-id", partition=2)
    flush_or_raise(producer)

    # 100,000 scores for ids nobody asked about, spread over the partitions.
    serve_pid = supervisor.components["serve"].pid
    before_mb = _rss_mb(serve_pid)
    scores = settings.topic("scores")
    for i in range(ORPHANS):
        orphan = ScoreMessage(id=f"orphan-{i:06d}", model="primary", version="1",
                              status="ok", score=0.5, label=1)
        producer.produce(scores, encode(orphan), orphan.id.encode(), partition=i % 4)
        if i % 1000 == 0:
            producer.poll(0)
    # One more orphan with a 100,000-character id: not held (a bad score record).
    producer.produce(scores, b'{"id":"' + b"o" * 100_000 + b'","model":"primary",'
                     b'"version":"1","status":"ok","score":0.5}', b"o", partition=3)
    flush_or_raise(producer, 60)

    # The pipeline goes on: valid requests after the flood are answered.
    valid = _valid(40, "after-")
    for i, event in enumerate(valid):
        event["ts"] = time.time() * 1000.0
        producer.produce(topic, msgspec.json.encode(event), str(event["id"]).encode(),
                         partition=i % 4)
    flush_or_raise(producer)
    results = _results(settings, 2 + len(valid), 90)
    for event in valid:
        assert results[str(event["id"])] in (["ok"], ["fallback"]), event["id"]
    assert results["near"] == ["rejected"]
    assert results["long-id"] == ["rejected"]  # the key stands in for an id too long to keep
    assert len(results) == 2 + len(valid)

    dead = dict(_dead_letters(settings, 2, 30))
    assert f"more than {MAX_INPUT_BYTES}" in dead[b"near"]
    assert f"more than {MAX_ID_LENGTH}" in dead[b"long-id"]

    metrics = metrics_endpoints(supervisor)["serve"]
    deadline = time.monotonic() + 30
    while _metric(metrics, "rendezvous_serve_orphans ", "") < ORPHANS \
            and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _metric(metrics, "rendezvous_serve_orphans ", "") == ORPHANS
    assert _metric(metrics, "rendezvous_bad_records_total",
                   'component="serve",topic="scores"') == 1
    grown_mb = _rss_mb(serve_pid) - before_mb
    print(f"serve RSS grew {grown_mb:.1f} MB holding {ORPHANS} orphan scores")
    assert grown_mb < ORPHAN_RSS_LIMIT_MB
    assert all(alive(c.pid) for c in supervisor.components.values())
