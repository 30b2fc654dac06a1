"""The monitor's pure statistics and window bookkeeping, against direct computations."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import msgspec
import pytest
from ddsketch import DDSketch
from prometheus_client.parser import text_string_to_metric_families

from rendezvous.messages import Candidate, Decision, Feedback, InputEvent
from rendezvous.monitor import stats
from rendezvous.monitor.alerts import Thresholds
from rendezvous.monitor.drift import DriftReference
from rendezvous.monitor.state import MonitorState
from rendezvous.monitor.status import KINDS, _buckets, _p99_ms, summarise
from rendezvous.monitor.windows import ModelWindow, window_start

MODELS = Path(__file__).resolve().parents[3] / "models"


def same(a: object, b: object) -> bool:
    """Equal to 9 significant digits (a sketch's protobuf keeps its mapping to ~1e-15),
    counting NaN (no data) as equal to NaN."""
    def rounded(value: object) -> object:
        if isinstance(value, float):
            return float(f"{value:.9g}")
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        return value
    return json.dumps(rounded(a), sort_keys=True) == json.dumps(rounded(b), sort_keys=True)


def test_psi_bins_uniform_and_repeated_quantiles() -> None:
    levels = [i / 10 for i in range(11)]
    edges, expected = stats.psi_bins([float(i) for i in range(11)], levels)
    assert edges == [float(i) for i in range(1, 10)]
    assert expected == pytest.approx([0.1] * 10)
    # a feature that is 0 for 30% of rows: the zero bin starts at level 0
    edges, expected = stats.psi_bins([0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7], levels)
    assert edges[0] == 0 and sum(expected) == pytest.approx(1.0)
    assert expected[0] == 0 and expected[1] == pytest.approx(0.4)


def test_psi_zero_for_expected_and_large_for_shift() -> None:
    assert stats.psi([0.25] * 4, [25, 25, 25, 25]) == pytest.approx(0.0)
    assert stats.psi([0.25] * 4, [0, 0, 0, 100]) > 2
    assert math.isnan(stats.psi([0.5, 0.5], [0, 0]))


def test_auc_matches_pairwise_count() -> None:
    rng = random.Random(0)
    pairs = [(round(rng.random(), 3), int(rng.random() < 0.4)) for _ in range(300)]
    pos: dict[int, int] = {}
    neg: dict[int, int] = {}
    for s, y in pairs:
        hist = pos if y else neg
        hist[stats.score_bin(s)] = hist.get(stats.score_bin(s), 0) + 1
    ps, ns = [s for s, y in pairs if y], [s for s, y in pairs if not y]
    direct = sum((p > n) + 0.5 * (p == n) for p in ps for n in ns) / (len(ps) * len(ns))
    assert stats.auc(pos, neg) == pytest.approx(direct)


def test_quantile_distance() -> None:
    a, b = DDSketch(0.01), DDSketch(0.01)
    for i in range(1000):
        a.add(i / 1000)
        b.add(i / 1000 + 0.2)
    assert stats.quantile_distance(a, b) == pytest.approx(0.2, rel=0.05)
    assert math.isnan(stats.quantile_distance(a, DDSketch(0.01)))


def test_aggregate_survives_bytes_round_trip() -> None:
    m = ModelWindow()
    m.scores = 3
    for v in (0.1, 0.5, 0.9):
        m.score.add(v)
    back = ModelWindow.from_bytes(m.to_bytes())
    assert same(back.view(), m.view())


def _decision(rid: str, ts: float, p: float, c: float, status: str = "ok") -> Decision:
    return Decision(rid, status, "primary", [Candidate("primary", "1", p, 10.0, True),  # type: ignore[arg-type]
                                            Candidate("canary", "1", c, 2.0, True)],
                    deadline_ms=ts + 50, decided_ms=ts, ts=ts)


def test_state_windows_join_restore_and_alert_once() -> None:
    state = MonitorState(10, thresholds=Thresholds(max_disagreement=0.2, min_samples=10))
    ts = 1_000_000.0
    rng = random.Random(1)
    labels = {}
    for i in range(40):
        state.observe_decision(_decision(f"r{i}", ts, rng.random(), rng.random()))
        labels[f"r{i}"] = i % 2
    for rid, label in labels.items():
        state.observe_feedback(Feedback(rid, label), ts)
    view = state.window_view(window_start(ts, 10_000), ts)
    assert view["decisions"]["count"] == 40 and view["models"]["primary"]["scores"] == 40
    assert view["models"]["canary"]["feedback"]["labelled"] == 40

    restored = MonitorState(10, thresholds=state.thresholds)
    for key, value in state.take_changes():
        if value is not None:
            restored.load(key, value)
    assert same(restored.window_view(view["start"], ts), view)
    assert not restored.decided  # every decision was joined and its key deleted

    first = restored.close_due(ts + 20_000)
    assert [a.cause for a in first] == ["disagreement"]
    restored.mark_alerted(first[0])
    again = MonitorState(10, thresholds=state.thresholds)
    for key, value in restored.take_changes():
        if value is not None:
            again.load(key, value)
    for key, value in state.take_changes():
        if value is not None:
            again.load(key, value)
    assert again.close_due(ts + 20_000) == []  # the dedupe marker survives a restart


def test_waiting_decisions_persist_in_chunks_that_expire_after_the_join_ttl() -> None:
    state = MonitorState(10, join_ttl_s=60)
    ts = 1_000_000.0
    windows = {f"r{i}": window_start(ts + i * 10_000, 10_000) for i in range(30)}
    chunks = []
    for rid, ws in windows.items():  # a decision every 10 s that nobody labels
        state.observe_decision(_decision(rid, ws, 0.9, 0.8))
        chunks += [key for key, value in state.take_changes() if key.startswith("d|")]
    assert len(chunks) == 30  # one record per flush, not per decision

    now = ts + 300_000
    state.close_due(now)
    young = {rid for rid, ws in windows.items() if ws >= now - 60_000}
    assert set(state.decided) == young and 0 < len(young) < len(windows)
    deleted = {key for key, value in state.take_changes() if value is None}
    assert deleted >= {key for key in chunks if int(key.split("|")[1]) < now - 60_000}
    assert not deleted & {key for key in chunks if int(key.split("|")[1]) >= now - 60_000}


def test_waiting_decisions_survive_a_restart_and_join_their_labels() -> None:
    state = MonitorState(10)
    ts = 1_000_000.0
    for i in range(10):
        state.observe_decision(_decision(f"r{i}", ts, 0.9, 0.2))
    restored = MonitorState(10)
    for key, value in state.take_changes():
        if value is not None:
            restored.load(key, value)
    assert set(restored.decided) == {f"r{i}" for i in range(10)}
    for i in range(10):
        restored.observe_feedback(Feedback(f"r{i}", 1), ts)
    view = restored.window_view(window_start(ts, 10_000), ts)
    assert view["models"]["primary"]["feedback"]["labelled"] == 10 and not restored.decided


def test_a_burst_of_waiting_decisions_is_split_into_records_kafka_accepts() -> None:
    # A restarted monitor catching up counts tens of thousands of decisions between two
    # flushes; one record of them all was over 1 MB and crashed faust's producer.
    state = MonitorState(10)
    ts = 1_000_000.0
    for i in range(12_000):
        state.observe_decision(_decision(f"request-{i:08d}", ts, 0.9, 0.2))
    chunks = [(k, v) for k, v in state.take_changes() if k.startswith("d|") and v is not None]
    assert len(chunks) == 6
    assert max(len(v) for _, v in chunks) < 512 * 1024
    restored = MonitorState(10)
    for key, value in chunks:
        restored.load(key, value)
    assert len(restored.decided) == 12_000


def test_late_answers_reported_on_decisions_are_counted_per_model() -> None:
    state = MonitorState(10)
    ts = 1_000_000.0
    state.observe_decision(_decision("r1", ts, 0.9, 0.8))
    state.observe_decision(msgspec.structs.replace(_decision("r2", ts, 0.9, 0.8),
                                                   late={"canary": 2, "shadow": 1}))
    models = state.window_view(window_start(ts, 10_000), ts)["models"]
    assert {name: m["late"] for name, m in models.items()} == {
        "primary": 0, "canary": 2, "shadow": 1}
    assert models["canary"]["scores"] == 2  # a late answer is not one of the window's scores


def test_drift_reference_flags_the_shifted_feature() -> None:
    ref = DriftReference.load(MODELS, "primary")
    state = MonitorState(10, reference=ref, thresholds=Thresholds(min_samples=50))
    from rendezvous.model import sample_events

    shift = 2 * (ref.features["mean_texture"].std or 0)
    for event in sample_events(300, seed=2):
        event["features"]["mean_texture"] += shift
        assert state.observe_input(InputEvent(event["id"], event["features"], ts=5.0), 5.0)
    found = state.close_due(60_000)
    assert [(a.cause, a.feature) for a in found] == [("drift", "mean_texture")]


def _exposition(kind: str) -> str:
    """What a process of ``kind`` really exports: its modules' metrics, nothing made up."""
    import importlib

    from prometheus_client import REGISTRY, generate_latest

    from rendezvous.monitor import exposition

    if kind == "monitor":
        return exposition.metrics_text().decode()
    modules = {"worker": "rendezvous.worker.runner", "serve": "rendezvous.service.runner",
               "decoy": "rendezvous.decoy.recorder"}
    importlib.import_module(modules[kind])
    text = generate_latest(REGISTRY).decode()
    # One test process holds every component's modules; keep this kind's own series.
    others = [f"rendezvous_{k}_" for k in KINDS if k != kind]
    return "\n".join(line for line in text.splitlines()
                     if not any(o in line for o in others)) + "\n"


@pytest.mark.parametrize("kind", ["decoy", "monitor", "worker", "serve"])
def test_status_reads_series_the_component_really_exports(kind: str) -> None:
    text = _exposition(kind)
    exported = {f.name for f in text_string_to_metric_families(text)}
    columns = KINDS[kind]
    for series in (*columns.processed, *columns.invalid, columns.lag, columns.batch):
        assert series.family in exported, f"{kind}: {series.family} is not exported"
    row = summarise(kind, text)
    assert row.kind == kind and row.error is None
    assert row.processed is not None and row.invalid is not None


def test_status_p99_from_a_real_histogram() -> None:
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    from rendezvous.metrics import BATCH_BUCKETS

    registry = CollectorRegistry()
    batch = Histogram(KINDS["worker"].batch.family, "batch", buckets=BATCH_BUCKETS,
                      registry=registry)
    for _ in range(99):
        batch.observe(0.0008)
    batch.observe(0.004)
    text = generate_latest(registry).decode()
    assert _p99_ms(_buckets({f.name: f for f in text_string_to_metric_families(text)}
                            [KINDS["worker"].batch.family])) == 1.0


def test_provisional_results_are_counted_apart_from_the_decisions() -> None:
    from rendezvous.monitor.exposition import WINDOWS

    state = MonitorState(10)
    ts = 2_000_000.0
    for i in range(6):
        d = _decision(f"p{i}", ts, 0.9, 0.8)
        if i < 2:  # two progressive requests got the canary's answer first
            d = Decision(d.id, "ok", "primary", d.candidates, d.deadline_ms, d.decided_ms, d.ts,
                         provisional="canary", provisional_ms=ts - 5)
        state.observe_decision(d)
    view = state.window_view(window_start(ts, 10_000), ts)
    assert view["decisions"]["count"] == 6 and view["decisions"]["provisional"] == 2
    assert view["decisions"]["rates"]["ok"] == 1.0  # a provisional result is no decision
    collector = type(WINDOWS)()  # not the registered one: other tests read that
    collector.view = view
    families = {f.name: f for f in collector.collect()}
    assert families["rendezvous_monitor_provisional"].samples[0].value == 2
