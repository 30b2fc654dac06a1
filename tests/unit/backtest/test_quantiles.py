"""Quantile functions of scores, and the bundled canary mapped onto the primary's scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rendezvous.backtest import BacktestConfig, Comparison
from rendezvous.backtest.runner import summarize
from rendezvous.core import Scales
from rendezvous.model import load_dataset, load_model, reference_quantiles, resolve_model, split
from rendezvous.model.quantiles import DEFAULT_LEVELS, Quantiles, distance, map_score
from rendezvous.settings import PACKAGE_DIR
from tests.model_versions import copy_version

MODELS = PACKAGE_DIR / "models"
THRESHOLDS = [round(t / 10, 1) for t in range(1, 10)]


def test_from_scores_is_numpys_quantile_function() -> None:
    scores = np.random.default_rng(0).beta(0.5, 0.5, 1000)
    q = Quantiles.from_scores(scores)
    assert q.levels.tolist() == list(DEFAULT_LEVELS)
    assert np.allclose(q.values, np.quantile(scores, DEFAULT_LEVELS), rtol=1e-5)


def test_quantile_of_inverts_score_at() -> None:
    q = Quantiles([0.0, 0.5, 1.0], [0.0, 0.2, 1.0])
    assert q.score_at(0.25) == pytest.approx(0.1) and q.quantile_of(0.1) == pytest.approx(0.25)
    assert q.score_at(0.75) == pytest.approx(0.6) and q.quantile_of(0.6) == pytest.approx(0.75)
    assert (q.quantile_of(-1.0), q.quantile_of(2.0)) == (0.0, 1.0)  # clamped
    assert (q.score_at(-0.5), q.score_at(1.5)) == (0.0, 1.0)


def test_a_tied_score_gets_the_middle_of_its_levels() -> None:
    # A model that mostly says exactly 0 or 1 (the bundled primary).
    q = Quantiles([0.0, 0.25, 0.5, 0.75, 1.0], [0.0, 0.0, 0.0, 1.0, 1.0])
    assert q.quantile_of(0.0) == pytest.approx(0.25)
    assert q.quantile_of(1.0) == pytest.approx(0.875)
    assert q.quantile_of(0.5) == pytest.approx(0.625)


def test_array_methods_agree_with_the_scalar_ones() -> None:
    q = Quantiles.from_scores(np.r_[np.zeros(40), np.random.default_rng(1).random(30), np.ones(30)])
    xs = np.r_[-1.0, 0.0, 1.0, 2.0, np.linspace(0, 1, 57)]
    assert np.allclose(q.quantiles_of(xs), [q.quantile_of(float(x)) for x in xs])
    levels = np.linspace(-0.1, 1.1, 61)
    assert np.allclose(q.scores_at(levels), [q.score_at(float(x)) for x in levels])


@pytest.mark.parametrize(("levels", "values"), [
    ([0.0, 1.0], [1.0, 0.0]), ([0.0, 0.5], [0.0, 1.0]), ([0.0, 1.0], [0.0]),
    ([0.0, 0.5, 0.5, 1.0], [0, 1, 2, 3]), ([0.0, 1.0], [0.0, float("nan")]),
])
def test_a_table_that_is_no_quantile_function_is_refused(levels: list[float],
                                                        values: list[float]) -> None:
    with pytest.raises(ValueError):
        Quantiles(levels, values)


def test_bundled_manifests_carry_their_score_quantiles() -> None:
    tables = reference_quantiles(MODELS)
    assert set(tables) >= {"primary", "canary"}
    assert all(len(q.levels) == 101 for versions in tables.values() for q in versions.values())


def test_mapped_canary_scores_cross_thresholds_like_the_primary_on_held_out_rows() -> None:
    """The quantile functions come from the training rows (the manifests); on the held-out
    rows, for each threshold, the share of rows above it from mapped canary scores is within
    2 percentage points of the primary's share, and from raw canary scores it is not."""
    data = split()
    primary = load_model(MODELS / "primary" / "1").predict(data.X_test).scores
    canary = load_model(MODELS / "canary" / "1").predict(data.X_test).scores
    to_primary = Scales(reference_quantiles(MODELS)).towards("primary")["canary"]["1"]
    assert to_primary.label == "reference:canary/1->primary/1"
    mapped = np.array([to_primary(float(s)) for s in canary])

    def shares(scores: np.ndarray) -> np.ndarray:
        return np.array([(scores > t).mean() for t in THRESHOLDS])

    mapped_gap = np.abs(shares(mapped) - shares(primary))
    raw_gap = np.abs(shares(canary) - shares(primary))
    assert mapped_gap.max() <= 0.02, dict(zip(THRESHOLDS, mapped_gap.round(3), strict=True))
    assert raw_gap.max() > 0.02, dict(zip(THRESHOLDS, raw_gap.round(3), strict=True))
    # The same through the array path (a backtest's) and the module function.
    source, target = to_primary.source, to_primary.target
    assert np.allclose(target.scores_at(source.quantiles_of(canary)), mapped)
    assert map_score(float(canary[0]), source, target) == pytest.approx(mapped[0])


def test_distance_between_samples_of_mapped_scores() -> None:
    x = np.linspace(0, 1, 500)
    assert distance(x, x) == 0.0
    assert distance(x, np.clip(x + 0.1, 0, 1)) == pytest.approx(0.09, abs=0.01)
    assert np.isnan(distance(x, np.zeros(0)))


def test_gates_pass_the_canary_and_fail_a_broken_model(tmp_path: Path) -> None:
    primary = load_model(resolve_model(MODELS, "primary"))
    canary = load_model(resolve_model(MODELS, "canary"))
    broken = load_model(copy_version(resolve_model(MODELS, "primary"), tmp_path,
                                       "9", shuffle_seed=0))
    data = load_dataset()
    x = data.X.astype(np.float32)
    production = primary.predict(x).scores
    config = BacktestConfig(archive=tmp_path, report=tmp_path / "r", against="primary",
                            models_dir=MODELS)
    verdicts = {}
    for model in (canary, primary, broken):
        rows = x[:, [data.feature_names.index(n) for n in model.feature_names]]
        comparison = Comparison(
            ids=[str(i) for i in range(len(x))], candidate=model.predict(rows).scores,
            production=production, inputs=len(x), invalid=0, scored=len(x), unmatched=0,
            decisions=len(x), score_seconds=0.1,
            production_models=[("primary", "1")] * len(x), rows=rows)
        verdicts[model.version + model.name] = summarize(comparison, model, config, [], 0.1)
    assert verdicts["1canary"]["passed"], verdicts["1canary"]["failures"]
    assert verdicts["1primary"]["passed"] and verdicts["1primary"]["quantile_distance"] < 0.01
    assert not verdicts["9primary"]["passed"]
    assert verdicts["9primary"]["failures"][0].startswith("agreement")
    print({k: (v["agreement"], v["quantile_distance"], v["input_psi"])
           for k, v in verdicts.items()})
