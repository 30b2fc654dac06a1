"""The monitor follows each model's manifest: drift of string features on category shares
(an unseen category counted), canary disagreement and feedback quality per task (binary,
multiclass, regression), on manifests made here (no ONNX file needed)."""

from __future__ import annotations

import math
import random
from typing import Any

import msgspec
import numpy as np
import pytest

from rendezvous.messages import Candidate, Decision, Feedback, InputEvent, Label
from rendezvous.model.manifest import (
    OTHER_CATEGORY,
    QUANTILE_LEVELS,
    Distribution,
    Feature,
    Manifest,
    Reference,
    Task,
)
from rendezvous.monitor import stats
from rendezvous.monitor.alerts import Thresholds
from rendezvous.monitor.drift import DriftReference
from rendezvous.monitor.exposition import WindowCollector
from rendezvous.monitor.state import MonitorState
from rendezvous.monitor.windows import DriftWindow, window_start

TS = 1_000_000.0
WS = window_start(TS, 10_000)
COLORS = {"red": 0.5, "green": 0.3, "blue": 0.15, OTHER_CATEGORY: 0.05}
RARE = ["teal", "olive"]  # seen in training, not listed: the rest
SHAPES = {"round": 0.6, "square": 0.4}


def manifest(task: Task = "binary", classes: list[Label] | None = None, name: str = "primary",
             version: str = "1") -> Manifest:
    """A model of two string features and a number, with its training reference."""
    rng = np.random.default_rng(0)
    size = rng.normal(10, 2, 5000)
    features = [Feature("color", "string", [*[c for c in COLORS if c != OTHER_CATEGORY], *RARE]),
                Feature("size", "float32"), Feature("shape", "string", list(SHAPES))]
    reference = Reference(QUANTILE_LEVELS, 5000, {
        "color": Distribution(categories=COLORS),
        "size": Distribution([float(q) for q in np.quantile(size, QUANTILE_LEVELS)],
                             float(size.mean()), float(size.std())),
        "shape": Distribution(categories=SHAPES),
    }, Distribution())
    defaults: dict[str, list[Label]] = {"binary": [0, 1], "multiclass": ["cat", "dog", "bird"],
                                        "regression": []}
    return Manifest(name, version, "0" * 64, features, "test", None, reference, task=task,
                    classes=defaults[task] if classes is None else classes, origin="imported")


def events(n: int, seed: int, colors: dict[str, float] | None = None) -> list[InputEvent]:
    rng = random.Random(seed)
    colors = colors or {"red": 0.5, "green": 0.3, "blue": 0.15, "teal": 0.03, "olive": 0.02}
    return [InputEvent(f"e{seed}-{i}", {
        "color": rng.choices(list(colors), list(colors.values()))[0],
        "size": rng.gauss(10, 2),
        "shape": rng.choices(list(SHAPES), list(SHAPES.values()))[0],
    }, ts=TS) for i in range(n)]


def drift_state(**kwargs: Any) -> MonitorState:
    return MonitorState(10, reference=DriftReference.from_manifest(manifest()), **kwargs)


def test_categorical_psi_flags_the_shifted_category_only() -> None:
    stable = drift_state(thresholds=Thresholds(min_samples=100))
    for event in events(2000, seed=1):
        assert stable.observe_input(event, TS)
    psi = stable.window_view(WS, TS)["drift"]["psi"]
    assert max(psi.values()) < 0.05, psi
    assert stable.close_due(TS + 20_000) == []

    shifted = drift_state(thresholds=Thresholds(min_samples=100))
    for event in events(2000, seed=2, colors={"red": 0.1, "green": 0.2, "blue": 0.7}):
        assert shifted.observe_input(event, TS)
    view = shifted.window_view(WS, TS)["drift"]
    assert view["psi"]["color"] > 0.25 and view["psi"]["shape"] < 0.05, view
    assert view["unseen"] == {"color": 0, "shape": 0}
    found = shifted.close_due(TS + 20_000)
    assert [(a.cause, a.feature) for a in found] == [("drift", "color")]


def test_categorical_psi_matches_a_direct_computation() -> None:
    ref = DriftReference.from_manifest(manifest())
    window = DriftWindow()
    sent = ["red"] * 40 + ["green"] * 30 + ["blue"] * 10 + ["teal"] * 15 + ["violet"] * 5
    for color in sent:
        ref.observe(window, [color, 10.0, "round"])
    # bins: red, green, blue, the rest (teal: seen in training, not listed), unseen
    assert window.bins["color"] == [40, 30, 10, 15, 5]
    expected = [0.5, 0.3, 0.15, 0.05, 0.0]
    direct = sum((a - e) * math.log(a / e) for a, e in
                 ((max(c / 100, 1e-4), max(e, 1e-4)) for c, e in
                  zip([40, 30, 10, 15, 5], expected, strict=True)))
    assert ref.psi(window)["color"] == pytest.approx(direct)
    assert ref.unseen(window) == {"color": 5, "shape": 0}


def test_the_rest_is_what_the_listed_categories_leave_when_not_given() -> None:
    ref = DriftReference.from_manifest(manifest())
    assert ref.features["shape"].expected == pytest.approx([0.6, 0.4, 0.0, 0.0])
    assert ref.features["color"].expected == pytest.approx([0.5, 0.3, 0.15, 0.05, 0.0])


def test_an_unseen_category_is_counted_shown_and_survives_a_restart() -> None:
    state = drift_state(thresholds=Thresholds(min_samples=100))
    sent = events(300, seed=3)
    for i, event in enumerate(sent):
        if i % 5 == 0:  # a fifth of the inputs carry a colour nobody trained on
            event = InputEvent(event.id, {**event.features, "color": f"purple-{i % 3}"},  # type: ignore[dict-item]
                               ts=TS)
        assert state.observe_input(event, TS)
    drift = state.window_view(WS, TS)["drift"]
    assert drift["unseen"] == {"color": 60, "shape": 0}
    assert sorted(drift["unseen_examples"]["color"]) == ["purple-0", "purple-1", "purple-2"]
    assert drift["psi"]["color"] > 0.25  # expected share 0: an unseen category is drift

    restored = drift_state()
    for key, value in state.take_changes():
        if value is not None:
            restored.load(key, value)
    assert restored.window_view(WS, TS)["drift"] == drift

    unseen = families(state.window_view(WS, TS))["unseen"]
    assert unseen == {(("feature", "color"),): 60, (("feature", "shape"),): 0}


def test_a_wrong_type_does_not_fit_and_numbers_still_bin() -> None:
    state = drift_state()
    assert not state.observe_input(InputEvent("x", {"color": 3.0, "size": 1.0, "shape": "round"},
                                              ts=TS), TS)
    assert state.observe_input(InputEvent("y", ["red", 30.0, "round"], ts=TS), TS)
    drift = state.window_view(WS, TS)["drift"]
    assert drift["unfit"] == 1 and drift["inputs"] == 1
    assert drift["psi"]["size"] > 1  # 30 is far above every training quantile


def test_counts_binned_by_another_reference_are_dropped_on_restore() -> None:
    state = drift_state()
    state.observe_input(events(1, seed=4)[0], TS)
    changes = [(k, v) for k, v in state.take_changes() if v is not None]
    other = manifest()
    fewer = msgspec.structs.replace(other, reference=Reference(QUANTILE_LEVELS, 10, {
        **other.reference.features, "color": Distribution(categories={"red": 1.0})},
        Distribution()))
    restored = MonitorState(10, reference=DriftReference.from_manifest(fewer))
    for key, value in changes:
        restored.load(key, value)
    restored.observe_input(InputEvent("z", ["red", 10.0, "round"], ts=TS), TS)  # no IndexError
    drift = restored.window_view(WS, TS)["drift"]
    window = restored.aggs[f"w|drift|all|{WS}"]
    assert isinstance(window, DriftWindow) and drift["inputs"] == 2
    assert window.bins["color"] == [1, 0, 0]  # counted afresh: red, the rest, unseen


# -- canary disagreement and feedback per task ------------------------------------------

def lookup(task: Task, classes: list[Label] | None = None) -> Any:
    made = {name: manifest(task, classes, name) for name in ("primary", "canary")}
    return lambda model, version: made.get(model)


def decision(rid: str, primary: tuple[float, Label | None], canary: tuple[float, Label | None],
             ) -> Decision:
    return Decision(rid, "ok", "primary", [
        Candidate("primary", "1", primary[0], 10.0, True, label=primary[1]),
        Candidate("canary", "1", canary[0], 2.0, True, label=canary[1])],
        deadline_ms=TS + 50, decided_ms=TS, ts=TS, version="1")


def families(view: dict[str, Any]) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    collector = WindowCollector()
    collector.view = view
    return {f.name.removeprefix("rendezvous_monitor_"): {
        tuple(sorted(s.labels.items())): s.value for s in f.samples} for f in collector.collect()}


def test_multiclass_canary_disagreement_is_the_label_disagreement_rate() -> None:
    state = MonitorState(10, manifests=lookup("multiclass"),
                         thresholds=Thresholds(max_disagreement=0.2, min_samples=50))
    rng = random.Random(7)
    classes = ["cat", "dog", "bird"]
    differ = 0
    for i in range(200):
        p = rng.choice(classes)
        c = p if rng.random() < 0.7 else rng.choice([k for k in classes if k != p])
        differ += p != c
        # confidences that would all "agree" by a 0.5 threshold: only the labels tell
        state.observe_decision(decision(f"r{i}", (0.9, p), (0.8, c)))
    pair = state.window_view(WS, TS)["pair"]
    assert pair["task"] == "multiclass" and pair["compared"] == 200
    assert pair["disagreement"] == pytest.approx(differ / 200) and 0.2 < differ / 200 < 0.4
    assert [a.cause for a in state.close_due(TS + 20_000)] == ["disagreement"]


def test_multiclass_feedback_compares_labels_as_text_before_or_after_the_decision() -> None:
    state = MonitorState(10, manifests=lookup("multiclass", [0, 1, 2]))
    truths: dict[str, int | str] = {}
    for i in range(30):
        rid = f"r{i}"
        truths[rid] = str(i % 3) if i % 2 else i % 3  # JSON "2" or 2: the model's class 2
        if i < 10:  # the label first: it waits for its decision
            state.observe_feedback(Feedback(rid, truths[rid]), TS)
        state.observe_decision(decision(rid, (0.7, i % 3), (0.6, (i + 1) % 3 if i < 6 else i % 3)))
    restored = MonitorState(10, manifests=lookup("multiclass", [0, 1, 2]))
    for key, value in state.take_changes():  # waiting decisions keep their labels
        if value is not None:
            restored.load(key, value)
    for rid, truth in list(truths.items())[10:]:
        restored.observe_feedback(Feedback(rid, truth), TS)
    models = restored.window_view(WS, TS)["models"]
    assert models["primary"]["feedback"]["labelled"] == 30
    assert models["primary"]["feedback"]["accuracy"] == 1.0
    assert models["canary"]["feedback"]["accuracy"] == pytest.approx(24 / 30)
    assert math.isnan(models["primary"]["feedback"]["auc"])
    series = families(restored.window_view(WS, TS))
    assert series["accuracy"] and not series["auc"] and not series["rmse"]
    assert series["model_task"] == {(("model", "canary"), ("task", "multiclass")): 1,
                                    (("model", "primary"), ("task", "multiclass")): 1}


def test_regression_feedback_rmse_and_mae_and_no_class_disagreement() -> None:
    state = MonitorState(10, manifests=lookup("regression"))
    rng = random.Random(9)
    rows = []
    for i in range(100):
        truth = rng.gauss(50, 10)
        p, c = truth + rng.gauss(0, 2), truth + rng.gauss(1, 4)
        rows.append((p, c, truth))
        state.observe_decision(decision(f"r{i}", (p, None), (c, None)))
        # feedback labels are numbers; a CSV's text number counts too
        state.observe_feedback(Feedback(f"r{i}", truth if i % 4 else repr(truth)), TS)
    state.observe_decision(decision("bad", (1.0, None), (2.0, None)))
    state.observe_feedback(Feedback("bad", "not a number"), TS)
    view = state.window_view(WS, TS)
    for index, model in ((0, "primary"), (1, "canary")):
        errors = [row[index] - row[2] for row in rows]
        fb = view["models"][model]["feedback"]
        assert fb["labelled"] == 101 and fb["unfit"] == 1
        assert fb["rmse"] == pytest.approx(math.sqrt(sum(e * e for e in errors) / 100))
        assert fb["mae"] == pytest.approx(sum(abs(e) for e in errors) / 100)
        assert math.isnan(fb["accuracy"]) and math.isnan(fb["auc"])
    pair = view["pair"]
    assert pair["task"] == "regression" and pair["compared"] == 0
    assert math.isnan(pair["disagreement"]) and pair["score_distance"] > 0
    assert state.close_due(TS + 20_000) == []  # no class disagreement to alert on
    restored = MonitorState(10, manifests=lookup("regression"))
    for key, value in state.take_changes():
        if value is not None:
            restored.load(key, value)
    again = restored.window_view(WS, TS)["models"]["primary"]["feedback"]
    for key in ("labelled", "unfit", "rmse", "mae"):
        assert again[key] == view["models"]["primary"]["feedback"][key]
    series = families(view)
    assert set(dict(k)["model"] for k in series["rmse"]) == {"primary", "canary"}
    assert series["mae"] and not series["accuracy"] and not series["auc"]
    assert not series["disagreement"] and series["score_distance"]


def test_binary_with_string_classes_keeps_accuracy_and_auc() -> None:
    state = MonitorState(10, manifests=lookup("binary", ["no", "yes"]))
    rng = random.Random(11)
    pairs = []
    for i in range(200):
        truth = "yes" if rng.random() < 0.4 else "no"
        score = min(max(rng.gauss(0.7 if truth == "yes" else 0.3, 0.2), 0.0), 1.0)
        pairs.append((score, truth))
        state.observe_decision(decision(f"r{i}", (score, None), (1 - score, None)))
        state.observe_feedback(Feedback(f"r{i}", truth), TS)
    fb = state.window_view(WS, TS)["models"]["primary"]["feedback"]
    correct = sum((s >= 0.5) == (t == "yes") for s, t in pairs)
    assert fb["accuracy"] == pytest.approx(correct / 200)
    pos = [s for s, t in pairs if t == "yes"]
    neg = [s for s, t in pairs if t == "no"]
    direct = sum((round(p * 1000) > round(n * 1000)) + 0.5 * (round(p * 1000) == round(n * 1000))
                 for p in pos for n in neg) / (len(pos) * len(neg))
    assert fb["auc"] == pytest.approx(direct) and fb["auc"] > 0.8
    assert math.isnan(fb["rmse"])
    pair = state.window_view(WS, TS)["pair"]
    assert pair["task"] == "binary" and pair["compared"] == 200


def test_a_model_without_a_manifest_is_binary_as_before() -> None:
    state = MonitorState(10)
    state.observe_decision(decision("a", (0.9, None), (0.2, None)))
    state.observe_feedback(Feedback("a", 1), TS)
    view = state.window_view(WS, TS)
    assert view["pair"]["disagreement"] == 1.0 and view["pair"]["task"] == "binary"
    assert view["models"]["primary"]["feedback"]["accuracy"] == 1.0
    assert view["models"]["canary"]["feedback"]["accuracy"] == 0.0


def test_label_keys_and_numbers() -> None:
    assert stats.label_key(1) == stats.label_key("1") == stats.label_key(1.0) == "1"
    assert stats.label_key("cat") == "cat" and stats.label_key(0.5) == "0.5"
    assert stats.as_number(3) == 3.0 and stats.as_number("2.5") == 2.5
    assert stats.as_number("cat") is None and stats.as_number("nan") is None


def test_multiclass_decisions_without_labels_are_not_compared_nor_scored() -> None:
    # decisions of a serve older than Candidate.label: nothing to compare the classes by
    state = MonitorState(10, manifests=lookup("multiclass"))
    for i in range(5):
        state.observe_decision(decision(f"r{i}", (0.9, None), (0.8, None)))
        state.observe_feedback(Feedback(f"r{i}", "cat"), TS)
    view = state.window_view(WS, TS)
    assert view["pair"]["compared"] == 0 and math.isnan(view["pair"]["disagreement"])
    fb = view["models"]["primary"]["feedback"]
    assert fb["labelled"] == 5 and fb["unfit"] == 5 and math.isnan(fb["accuracy"])


def test_a_count_feature_is_binned_at_integers() -> None:
    # A count (~ Poisson(4)) imported from 600 rows: numpy put the 0.1 quantile at 1.9,
    # between two counts; a bin [1.9, 2) holds no count and read 0 of an expected 0.1,
    # so stable data read PSI ~0.7. Binned at integers, P(X < 2) is that level.
    quantiles = [0.0, 1.9, 2.0, 3.0, 3.0, 4.0, 4.0, 5.0, 6.0, 7.0, 13.0]
    edges, expected = stats.psi_bins(quantiles, QUANTILE_LEVELS)
    assert edges == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert expected == pytest.approx([0.1, 0.15, 0.2, 0.2, 0.1, 0.1, 0.15])
    rng = np.random.default_rng(3)
    for _ in range(5):
        counts = np.bincount([stats.bin_index(edges, float(v)) for v in rng.poisson(4, 300)],
                             minlength=len(expected))
        assert stats.psi(expected, counts.tolist()) < 0.25
    moved = np.bincount([stats.bin_index(edges, float(v)) for v in rng.poisson(6, 300)],
                        minlength=len(expected))
    assert stats.psi(expected, moved.tolist()) > 0.25


def test_a_value_with_a_mass_of_its_own_is_no_edge() -> None:
    # A continuous feature capped at 6 (a fifth of the rows): the quantile before the cap
    # is an interpolation towards it; a bin [5.995, 6) would expect rows it never gets.
    quantiles = [0.01, 1.06, 1.66, 2.2, 2.77, 3.37, 4.05, 4.88, 5.995, 6.0, 6.0]
    edges, expected = stats.psi_bins(quantiles, QUANTILE_LEVELS)
    assert edges == quantiles[1:9]
    assert expected == pytest.approx([0.1] * 8 + [0.2])
    # without repeats, nothing changes: P(X < edge) is the edge's level
    plain = [0.0, 1.1, 2.3, 3.2, 4.4, 5.1, 6.6, 7.2, 8.9, 9.5, 12.0]
    assert stats.psi_bins(plain, QUANTILE_LEVELS) == (plain[1:-1], pytest.approx([0.1] * 10))
