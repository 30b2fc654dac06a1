"""The faust monitor against the real broker: round trip, drift alerts, feedback, restart."""

from __future__ import annotations

import json
import random
import re
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from confluent_kafka import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from rendezvous.local.supervisor import Supervisor
from rendezvous.messages import Candidate, Decision, Feedback, encode
from rendezvous.model import sample_events
from rendezvous.monitor.windows import window_start
from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise, make_consumer, make_producer

pytestmark = pytest.mark.integration

DOCUMENTED = [  # family names as the parser reports them (counters without _total)
    "rendezvous_monitor_records", "rendezvous_monitor_processed", "rendezvous_monitor_invalid",
    "rendezvous_monitor_sample_ratio", "rendezvous_monitor_batch_latency_seconds",
    "rendezvous_monitor_window_start_seconds", "rendezvous_monitor_window_end_seconds",
    "rendezvous_monitor_scores", "rendezvous_monitor_candidates",
    "rendezvous_monitor_latency_ms", "rendezvous_monitor_score_quantile",
    "rendezvous_monitor_decisions", "rendezvous_monitor_decision_rate",
    "rendezvous_monitor_provisional",
    "rendezvous_monitor_disagreement", "rendezvous_monitor_score_distance",
    "rendezvous_monitor_quantile_distance", "rendezvous_monitor_rank_gap",
    "rendezvous_monitor_inputs", "rendezvous_monitor_psi", "rendezvous_monitor_labelled",
    "rendezvous_monitor_accuracy", "rendezvous_monitor_auc",
]


def start_monitor(supervisor: Supervisor, *args: str) -> int:
    component = supervisor.start("monitor", ["monitor", "--port", "0", "--grace-s", "0.5", *args])
    found = re.findall(r"rendezvous-ready monitor port=(\d+)", component.log.read_text())
    return int(found[-1])


def get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return response.read().decode()


def windows(port: int) -> dict[int, dict[str, Any]]:
    return {w["start"]: w for w in json.loads(get(port, "/windows"))["windows"]}


def wait_for(check: Callable[[], Any], timeout_s: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def produce(settings: Settings, topic: str, records: list[tuple[str, bytes]]) -> None:
    producer = make_producer(settings)
    for key, value in records:
        producer.produce(settings.topic(topic), value, key.encode())
    flush_or_raise(producer)


def decision(rid: str, ts: float, primary: float, canary: float, status: str = "ok") -> Decision:
    return Decision(rid, status, "primary", [  # type: ignore[arg-type]
        Candidate("primary", "1", primary, 12.0, True),
        Candidate("canary", "1", canary, 3.0, True),
    ], deadline_ms=ts + 50, decided_ms=ts, ts=ts)


def decisions(n: int, ts: float, seed: int, prefix: str = "r") -> list[Decision]:
    rng = random.Random(seed)
    return [decision(f"{prefix}{i}", ts, rng.random(), rng.random()) for i in range(n)]


def read_alerts(settings: Settings, quiet_s: float = 2.0, timeout_s: float = 30.0,
                until: Callable[[list[dict[str, Any]]], bool] = bool) -> list[dict[str, Any]]:
    """Alerts on the topic: waits until ``until`` holds, then ``quiet_s`` more for duplicates."""
    consumer = make_consumer(settings, settings.group(f"alerts-{time.time_ns()}"))
    consumer.subscribe([settings.topic("alerts")])
    found: list[dict[str, Any]] = []
    deadline, quiet_until = time.monotonic() + timeout_s, None
    try:
        while time.monotonic() < deadline:
            record = consumer.poll(0.2)
            if record is not None and record.error() is None:
                found.append(json.loads(record.value()))
            if quiet_until is None and until(found):
                quiet_until = time.monotonic() + quiet_s
            if quiet_until is not None and time.monotonic() > quiet_until:
                return found
    finally:
        consumer.close()
    raise AssertionError(f"alerts never satisfied the condition: {found}")


def test_round_trip_and_documented_metrics(settings: Settings, supervisor: Supervisor) -> None:
    port = start_monitor(supervisor, "--window-s", "2")
    ts = time.time() * 1000 - 4000  # a window that is already over, so it closes at once
    sent = decisions(50, ts, seed=1)
    # 10 progressive requests got the canary's answer as a provisional result first
    sent[:10] = [msgspec.structs.replace(d, provisional="canary", provisional_ms=ts - 1)
                 for d in sent[:10]]
    produce(settings, "decisions", [(d.id, encode(d)) for d in sent])
    produce(settings, "feedback", [(f"r{i}", encode(Feedback(f"r{i}", i % 2))) for i in range(50)])
    events = sample_events(50, seed=3)
    produce(settings, "input", [(e["id"], json.dumps({**e, "ts": ts}).encode()) for e in events])
    produce(settings, "input", [("bad", b"{not json")])

    ws = window_start(ts, 2000)

    def complete() -> bool:
        # Parts of a window appear as their records arrive: feedback may still be on its way.
        w = windows(port).get(ws) or {}
        primary = w.get("models", {}).get("primary", {})
        return bool(w.get("closed") and primary.get("scores") == 50
                    and primary.get("feedback", {}).get("labelled") == 50
                    and w.get("drift", {}).get("inputs") == 50)

    wait_for(complete, what="the monitor to consume every record (faust round trip)")
    wait_for(lambda: 'rendezvous_monitor_invalid_total{topic="input"} 1.0' in get(port, "/metrics"),
             what="the undecodable input counted as invalid")
    text = get(port, "/metrics")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    missing = [name for name in DOCUMENTED if name not in families]
    assert not missing, missing
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in families.values() for s in f.samples}
    assert samples[("rendezvous_monitor_scores", (("model", "primary"),))] == 50
    # provisional results counted apart: 50 decisions, all ok, 10 preceded by a provisional
    assert samples[("rendezvous_monitor_decisions", ())] == 50
    assert samples[("rendezvous_monitor_provisional", ())] == 10
    assert samples[("rendezvous_monitor_decision_rate", (("status", "ok"),))] == 1.0
    assert samples[("rendezvous_monitor_invalid_total", (("topic", "input"),))] == 1
    assert samples[("rendezvous_monitor_processed_total", (("topic", "decisions"),))] == 50


def test_feedback_accuracy_matches_direct_computation(settings: Settings,
                                                      supervisor: Supervisor) -> None:
    port = start_monitor(supervisor, "--window-s", "5")
    ts = time.time() * 1000
    rng = random.Random(5)
    sent = decisions(300, ts, seed=4, prefix="fb")
    labels = {d.id: int(rng.random() < 0.6) for d in sent}
    produce(settings, "decisions", [(d.id, encode(d)) for d in sent])
    # a third of the labels arrive before their decision: the join waits for either side
    early = [d for d in decisions(100, ts, seed=6, prefix="early")]
    labels.update({d.id: int(rng.random() < 0.5) for d in early})
    produce(settings, "feedback", [(r, encode(Feedback(r, label))) for r, label in labels.items()])
    produce(settings, "decisions", [(d.id, encode(d)) for d in early])

    expected = {}
    for model in ("primary", "canary"):
        scores = [(c.score, labels[d.id]) for d in sent + early for c in d.candidates
                  if c.model == model]
        correct = sum(int((s >= 0.5) == bool(y)) for s, y in scores)
        expected[model] = correct / len(scores)
    ws = window_start(ts, 5000)

    def labelled() -> dict[str, Any] | None:
        models = windows(port).get(ws, {}).get("models", {})
        done = all(models.get(m, {}).get("feedback", {}).get("labelled") == 400
                   for m in expected)
        return models if done else None

    models = wait_for(labelled, what="400 labels joined per model")
    for model, accuracy in expected.items():
        assert models[model]["feedback"]["accuracy"] == pytest.approx(accuracy, abs=1e-12)
        assert 0.3 < models[model]["feedback"]["auc"] < 0.7  # random scores


def committed_everything(settings: Settings, topic: str) -> bool:
    consumer = make_consumer(settings, settings.group("monitor-bulk"))
    try:
        parts = [TopicPartition(settings.topic(topic), p) for p in range(4)]
        committed = consumer.committed(parts, timeout=5)
        for tp in committed:
            _low, high = consumer.get_watermark_offsets(tp, timeout=5)
            if high and tp.offset < high:
                return False
        return True
    finally:
        consumer.close()
