"""Quantile functions, and the backtest's gates on the bundled models (no broker)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rendezvous.backtest import BacktestConfig, Comparison
from rendezvous.backtest.runner import summarize
from rendezvous.model import load_dataset, load_model, resolve_model
from rendezvous.model.quantiles import QuantileFunction, distance, map_score
from rendezvous.testing.models import copy_version

ROOT = Path(__file__).resolve().parents[2]


def test_score_to_quantile_and_back() -> None:
    f = QuantileFunction.from_scores(np.linspace(0.0, 1.0, 1001) ** 2)
    assert f.quantile_of(0.25) == pytest.approx(0.5, abs=1e-3)
    assert f.score_at(0.5) == pytest.approx(0.25, abs=1e-3)
    assert f.quantile_of([-1.0, 2.0]).tolist() == [0.0, 1.0]  # clipped outside
    levels = np.linspace(0.05, 0.95, 19)
    assert np.allclose(f.quantile_of(f.score_at(levels)), levels, atol=1e-3)


def test_a_score_piled_at_one_value_maps_to_the_middle_of_its_levels() -> None:
    f = QuantileFunction([0.0, 0.25, 0.5, 0.75, 1.0], [0.0, 0.0, 0.0, 0.5, 1.0])
    assert f.quantile_of(0.0) == pytest.approx(0.25)
    assert QuantileFunction([0.0, 1.0], [3.0, 3.0]).quantile_of([1.0, 3.0]).tolist() == [0.5, 0.5]
    with pytest.raises(ValueError):
        QuantileFunction([0.0, 0.5], [1.0, 0.0])


def test_map_score_between_scales_and_distance() -> None:
    a = QuantileFunction.from_scores(np.linspace(0, 1, 101))
    b = QuantileFunction.from_scores(np.linspace(0, 10, 101))
    assert map_score(0.3, a, b) == pytest.approx(3.0)
    x = np.linspace(0, 1, 500)
    assert distance(x, x) == 0.0
    assert distance(x, np.clip(x + 0.1, 0, 1)) == pytest.approx(0.09, abs=0.01)
    assert np.isnan(distance(x, np.zeros(0)))


def test_gates_pass_the_canary_and_fail_a_broken_model(tmp_path: Path) -> None:
    primary = load_model(resolve_model(ROOT / "models", "primary"))
    canary = load_model(resolve_model(ROOT / "models", "canary"))
    broken = load_model(copy_version(resolve_model(ROOT / "models", "primary"), tmp_path,
                                       "9", shuffle_seed=0))
    data = load_dataset()
    x = data.X.astype(np.float32)
    production = primary.predict(x)[0]
    config = BacktestConfig(archive=tmp_path, report=tmp_path / "r", against="primary",
                            models_dir=ROOT / "models")
    verdicts = {}
    for model in (canary, primary, broken):
        rows = x[:, [data.feature_names.index(n) for n in model.feature_names]]
        comparison = Comparison(
            ids=[str(i) for i in range(len(x))], candidate=model.predict(rows)[0],
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
