"""``rendezvous worker`` as a real process against the real broker."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from rendezvous.local.supervisor import Component, Supervisor
from rendezvous.messages import Score, decode_score
from rendezvous.model import load_model, resolve_model, sample_events
from rendezvous.readiness import READY_MARK
from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise, make_consumer, make_producer, poll_batch
from rendezvous.transport.connect import kafka_config

pytestmark = pytest.mark.integration
PARTITIONS = 4
FAR = 600_000.0
"""A deadline (ms) no test reaches, for events that must not be shed however slow the machine."""


def send(settings: Settings, events: Sequence[dict[str, Any] | bytes],
         partition: int | None = None) -> dict[str, int]:
    """Produce ``events`` (round-robin over partitions unless one is given); id -> partition."""
    producer = make_producer(settings)
    placed: dict[str, int] = {}
    for i, event in enumerate(events):
        p = partition if partition is not None else i % PARTITIONS
        if isinstance(event, bytes):
            producer.produce(settings.topic("input"), event, partition=p)
            continue
        event = {"deadline_ms": FAR, **event}
        producer.produce(settings.topic("input"), msgspec.json.encode(event), event["id"],
                         partition=p)
        placed[event["id"]] = p
    flush_or_raise(producer)
    return placed


def collect(settings: Settings, want: set[str], timeout_s: float = 30.0,
            until: int | None = None) -> list[tuple[Score, int]]:
    """Scores (with their partition) from the start of the scores topic, until every id
    in ``want`` is seen (or ``until`` scores are), or the timeout."""
    consumer = make_consumer(settings, settings.group("reader"))
    consumer.assign([TopicPartition(settings.topic("scores"), p, OFFSET_BEGINNING)
                     for p in range(PARTITIONS)])
    got: list[tuple[Score, int]] = []
    missing = set(want)
    deadline = time.monotonic() + timeout_s
    while (missing if until is None else len(got) < until) and time.monotonic() < deadline:
        for record in poll_batch(consumer, 5000, 0.2):
            score = decode_score(record.value() or b"")
            got.append((score, record.partition() or 0))
            missing.discard(score.id)
    consumer.close()
    return got


def metrics_port(component: Component) -> int:
    found = re.findall(rf"{READY_MARK} worker .*metrics=(\d+)", component.log.read_text())
    assert found, component.log.read_text()
    return int(found[-1])


def counters(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {sample.name: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name.startswith("rendezvous_worker_")
            and sample.labels.get("model") == "primary"}


def expected(settings: Settings, events: list[dict[str, Any]]) -> dict[str, tuple[float, int]]:
    model = load_model(resolve_model(settings.models_dir, "primary"))
    names = model.feature_names
    rows = np.array([[e["features"][n] for n in names] if isinstance(e["features"], dict)
                     else e["features"] for e in events], dtype=np.float32)
    prediction = model.predict(rows)
    scores, labels = prediction.scores, np.asarray(prediction.labels)
    return {e["id"]: (float(s), int(lab)) for e, s, lab in zip(events, scores, labels, strict=True)}


def test_every_event_scored_on_its_input_partition(settings: Settings,
                                                   supervisor: Supervisor) -> None:
    events = sample_events(200, seed=1) + sample_events(200, seed=2, named=False)
    placed = send(settings, events)  # before the worker starts: it reads from the beginning
    supervisor.start("w1", ["worker", "--model", "primary"])
    got = collect(settings, set(placed))
    by_id = {score.id: (score, partition) for score, partition in got}
    assert set(by_id) == set(placed)
    truth = expected(settings, events)
    for rid, (score, partition) in by_id.items():
        assert partition == placed[rid]
        assert (score.model, score.version, score.status) == ("primary", "1", "ok")
        assert score.score == pytest.approx(truth[rid][0], abs=1e-6)
        assert score.label == truth[rid][1]
        assert 0 < score.received_ms <= score.scored_ms
    assert {p for p in placed.values()} == set(range(PARTITIONS))


def test_invalid_and_expired_events_get_no_score_and_are_counted(
        settings: Settings, supervisor: Supervisor) -> None:
    w = supervisor.start("w1", ["worker", "--model", "primary", "--metrics-port", "0"])
    good = sample_events(3, seed=5)
    named = good[0]["features"]
    bad: list[dict[str, Any] | bytes] = [
        b'{"id": "bad-json", "features": [1, 2',
        b'{"id": "bad-nan", "features": [1e999' + b", 1.0" * 29 + b"]}",
        {"id": "bad-missing", "features": {k: v for k, v in list(named.items())[1:]}},
        {"id": "bad-extra", "features": {**named, "colour": 1.0}},
        {"id": "bad-length", "features": [1.0] * 29},
        {"id": "bad-type", "features": {**named, "mean_radius": "big"}},
    ]
    expired = {"id": "expired", "features": named, "ts": time.time() * 1000 - 3_600_000,
               "deadline_ms": 50.0}
    after = sample_events(5, seed=6, named=False)
    # one partition, so the valid events that follow prove the bad ones were passed
    placed = send(settings, [*good, *bad, expired, *after], partition=2)
    got = collect(settings, {e["id"] for e in good + after})
    ids = [score.id for score, _ in got]
    assert sorted(ids) == sorted(e["id"] for e in good + after)
    assert "expired" in placed and "expired" not in ids
    seen = counters(metrics_port(w))
    assert seen["rendezvous_worker_invalid_total"] == len(bad)
    assert seen["rendezvous_worker_shed_total"] == 1
    assert seen["rendezvous_worker_scored_total"] == len(good) + len(after)
    assert seen["rendezvous_worker_records_total"] == len(good) + len(bad) + 1 + len(after)


def test_kill9_mid_stream_then_restart_loses_no_score(settings: Settings,
                                                      supervisor: Supervisor) -> None:
    events = sample_events(12_000, seed=7, prefix="k")
    placed = send(settings, events)
    # slow enough (64 per 5 ms) that the kill lands mid-stream; static membership so
    # the restarted worker gets its partitions back without waiting for the session timeout
    args = ["worker", "--model", "primary", "--max-batch", "64", "--delay-ms", "5",
            "--instance-id", "w1"]
    supervisor.start("w1", args)
    before = collect(settings, set(), until=1500)
    supervisor.kill9("w1")
    assert 1500 <= len({s.id for s, _ in before}) < len(placed), "the kill was not mid-stream"
    supervisor.restart("w1")
    got = collect(settings, set(placed), timeout_s=60)
    assert {s.id for s, _ in got} == set(placed)
    assert all(partition == placed[s.id] for s, partition in got)


def test_sigterm_drains_the_batch_in_flight_and_exits_0(settings: Settings, tmp_path: Path,
                                                        component_env: dict[str, str]) -> None:
    events = sample_events(2000, seed=8, prefix="t")
    placed = send(settings, events)
    log = tmp_path / "worker.log"
    delay_ms = 300
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rendezvous", "worker", "--model", "primary",
             "--max-batch", "100", "--delay-ms", str(delay_ms)],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **component_env})
    try:
        first = collect(settings, set(), until=1)  # the worker is now in its next batch's delay
        assert first, log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    consumer = make_consumer(settings, settings.group("worker-primary"))
    committed = consumer.committed([TopicPartition(settings.topic("input"), p)
                                    for p in range(PARTITIONS)], timeout=10)
    written = sum(consumer.get_watermark_offsets(TopicPartition(settings.topic("scores"), p),
                                                 timeout=10)[1] for p in range(PARTITIONS))
    consumer.close()
    # the topic is fresh: partition p holds events p, p+4, ... at offsets 0, 1, ...
    done = {e["id"] for tp in committed for e in events[tp.partition::PARTITIONS][:tp.offset]}
    assert len(first) < len(done) < len(placed), "finished the batch in flight, then stopped"
    got = collect(settings, done, timeout_s=10)
    assert written == len(got) == len(done), "every committed input has exactly one score"
    assert {s.id for s, _ in got} == done
    assert all(s.scored_ms - s.received_ms >= delay_ms for s, _ in got), "--delay-ms delays"
    assert "draining" in log.read_text()


def test_corrupted_artifact_is_refused_naming_the_file(settings: Settings, tmp_path: Path,
                                                       component_env: dict[str, str]) -> None:
    models = tmp_path / "models"
    shutil.copytree(settings.models_dir, models)
    artifact = models / "primary" / "1" / "model.onnx"
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    env = {**os.environ, **component_env, "RENDEZVOUS_MODELS_DIR": str(models)}
    done = subprocess.run([sys.executable, "-m", "rendezvous", "worker", "--model", "primary"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert str(artifact) in done.stderr and "Traceback" not in done.stderr


def test_unknown_model_lists_the_ones_there(component_env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "rendezvous", "worker", "--model", "nope"],
                          env={**os.environ, **component_env}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    assert "canary, primary" in done.stderr and "Traceback" not in done.stderr


def test_refused_scores_are_not_committed_and_the_worker_says_so(
        settings: Settings, component_env: dict[str, str]) -> None:
    # A scores topic with fewer partitions than the input: partition 3 does not exist there.
    broken = settings.model_copy(update={"topic_prefix": settings.topic_prefix + "b."})
    admin = AdminClient(kafka_config(broken))
    futures = admin.create_topics([NewTopic(broken.topic("input"), PARTITIONS, 1),
                                   NewTopic(broken.topic("scores"), 1, 1)])
    for future in futures.values():
        future.result()
    send(broken, sample_events(40, seed=9, prefix="r"))
    env = {**os.environ, **component_env, "RENDEZVOUS_TOPIC_PREFIX": broken.topic_prefix}
    done = subprocess.run([sys.executable, "-m", "rendezvous", "worker", "--model", "primary"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "not committed" in done.stderr and "Traceback" not in done.stderr
    consumer = make_consumer(broken, broken.group("worker-primary"))
    committed = consumer.committed([TopicPartition(broken.topic("input"), 3)], timeout=10)
    consumer.close()
    assert committed[0].offset < 0, "offsets of unacknowledged scores were committed"
