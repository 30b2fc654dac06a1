"""The monitor with model versions: shadow answers counted apart, canary vs primary compared
on their own reference quantiles (no broker)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from rendezvous.messages import Candidate, Decision, Feedback
from rendezvous.model import load_model, resolve_model, sample_events
from rendezvous.monitor.state import MonitorState, score_references, shadow_subject
from rendezvous.monitor.windows import window_start

MODELS = Path(__file__).resolve().parents[3] / "models"
TS = 1_000_000.0


def decision(rid: str, p: float, c: float, shadow: float | None = None) -> Decision:
    candidates = [Candidate("primary", "1", p, 10.0, True), Candidate("canary", "1", c, 2.0, True)]
    if shadow is not None:
        candidates.append(Candidate("primary", "2", shadow, 9.0, True, shadow=True))
    return Decision(rid, "ok", "primary", candidates, deadline_ms=TS + 50, decided_ms=TS, ts=TS,
                    version="1")


def test_shadow_answers_are_a_model_of_their_own_with_feedback() -> None:
    state = MonitorState(10)
    for i in range(20):
        state.observe_decision(decision(f"r{i}", 0.9, 0.8, shadow=0.1 if i % 2 else None))
        state.observe_feedback(Feedback(f"r{i}", 1), TS)
    view = state.window_view(window_start(TS, 10_000), TS)
    shadow = shadow_subject("primary", "2")
    assert view["models"]["primary"]["scores"] == 20
    assert view["models"][shadow]["scores"] == 10
    assert view["models"]["primary"]["feedback"]["labelled"] == 20
    assert view["models"][shadow]["feedback"]["labelled"] == 10
    assert view["models"][shadow]["feedback"]["accuracy"] == 0.0  # it said 0.1, truth 1
    assert view["pair"]["disagreement"] == 0.0  # the shadow never enters the live pair


def test_canary_and_primary_compared_on_their_own_reference_quantiles() -> None:
    primary, canary = (load_model(resolve_model(MODELS, n)) for n in ("primary", "canary"))
    events = sample_events(300, seed=5)
    x = np.array([[e["features"][n] for n in primary.feature_names] for e in events],
                 np.float32)
    ps, cs = primary.predict(x).scores, canary.predict(x).scores
    state = MonitorState(10, score_references=score_references(MODELS))
    for i, (p, c) in enumerate(zip(ps.tolist(), cs.tolist(), strict=True)):
        state.observe_decision(decision(f"r{i}", p, c))
    pair = state.window_view(window_start(TS, 10_000), TS)["pair"]
    assert 0.0 < pair["quantile_distance"] < 0.25, pair
    assert 0.0 < pair["rank_gap"] < 0.25, pair
    restored = MonitorState(10)
    for key, value in state.take_changes():
        if value is not None:
            restored.load(key, value)
    again = restored.window_view(window_start(TS, 10_000), TS)["pair"]
    assert again["rank_gap"] == pair["rank_gap"]
    # without references, the mapped figures are unknown, not wrong
    plain = MonitorState(10)
    plain.observe_decision(decision("a", 0.9, 0.8))
    assert math.isnan(plain.window_view(window_start(TS, 10_000), TS)["pair"]["rank_gap"])
