"""Backtest statistics, verdict and report files, without a broker."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from rendezvous.backtest import EXIT_FAILED, EXIT_PASSED, BacktestConfig, Comparison, stats
from rendezvous.backtest.report import HISTOGRAMS, QQ_PLOT, REPORT, SUMMARY, write_report
from rendezvous.backtest.runner import summarize
from rendezvous.backtest.scoring import production_scores, score_inputs
from rendezvous.messages import Candidate, Decision, encode
from rendezvous.model import load_model, resolve_model, sample_events

ROOT = Path(__file__).resolve().parents[3]


def test_agreement_counts_same_side_of_the_threshold() -> None:
    a = np.array([0.1, 0.6, 0.5, 0.9])
    b = np.array([0.2, 0.4, 0.7, 0.49])
    assert stats.agreement(a, b) == 0.5
    assert stats.agreement(a, a) == 1.0
    assert stats.agreement(a, b, threshold=0.05) == 1.0
    assert math.isnan(stats.agreement(np.zeros(0), np.zeros(0)))
    with pytest.raises(ValueError):
        stats.agreement(a, b[:2])


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    base = rng.beta(2, 5, 20_000)
    assert stats.psi(base, base) == pytest.approx(0.0)
    assert stats.psi(base, rng.beta(2, 5, 20_000)) < 0.01
    assert stats.psi(base, rng.beta(5, 2, 20_000)) > 0.2
    # hand-computed: two bins' shares swap between 0.25 and 0.75
    expected = np.array([0.05] * 25 + [0.95] * 75)
    actual = np.array([0.05] * 75 + [0.95] * 25)
    assert stats.psi(expected, actual, bins=2) == pytest.approx(2 * 0.5 * math.log(3))
    assert math.isnan(stats.psi(base, np.zeros(0)))


def test_ks_and_quantiles() -> None:
    x = np.linspace(0, 1, 101)
    assert stats.ks(x, x)[0] == 0.0
    statistic, pvalue = stats.ks(x, x * 0.5)
    assert statistic == pytest.approx(0.5, abs=0.01) and pvalue < 1e-6
    q = stats.quantiles(x)
    assert q[0] == 0.0 and q[-1] == 1.0 and q[stats.QUANTILE_LEVELS.index(0.5)] == 0.5
    assert all(math.isnan(v) for v in stats.quantiles(np.zeros(0)))


def _comparison(candidate: list[float], production: list[float]) -> Comparison:
    n = len(candidate)
    return Comparison(ids=[str(i) for i in range(n)], candidate=np.array(candidate),
                      production=np.array(production), inputs=n + 2, invalid=2, scored=n,
                      unmatched=0, decisions=n, score_seconds=0.01)


def test_verdict_passes_within_thresholds_and_fails_closed(tmp_path: Path) -> None:
    model = load_model(resolve_model(ROOT / "models", "canary"))
    config = BacktestConfig(archive=tmp_path, report=tmp_path / "r", min_agreement=0.75,
                            max_quantile_distance=1.0)
    same = summarize(_comparison([0.1, 0.9, 0.8, 0.2], [0.1, 0.95, 0.85, 0.3]), model, config,
                     [], 0.1)
    assert same["passed"] and same["failures"] == []
    assert same["agreement"] == pytest.approx(1.0) and same["label_agreement"] == 1.0
    worse = summarize(_comparison([0.9, 0.9, 0.8, 0.2], [0.2, 0.8, 0.9, 0.1]), model,
                      BacktestConfig(archive=tmp_path, report=tmp_path, min_agreement=0.8),
                      [], 0.1)
    assert not worse["passed"] and worse["failures"][0].startswith("agreement 0.")
    empty = summarize(_comparison([], []), model, config, [], 0.1)
    assert not empty["passed"] and "no request could be compared" in empty["failures"][0]
    assert EXIT_PASSED == 0 and EXIT_FAILED == 3


def test_report_files_are_written_and_json_has_no_nan(tmp_path: Path) -> None:
    model = load_model(resolve_model(ROOT / "models", "canary"))
    config = BacktestConfig(archive=tmp_path, report=tmp_path / "report")
    for candidate, production in (([0.1, 0.7, 0.95], [0.2, 0.6, 0.99]), ([], [])):
        comparison = _comparison(candidate, production)
        summary = summarize(comparison, model, config,
                            [{"path": "x.parquet", "reason": "bad <file>"}], 0.5)
        html = write_report(config.report, summary, comparison.candidate, comparison.production)
        assert html.read_text().count("<img") == 2 and "bad &lt;file&gt;" in html.read_text()
        written = json.loads((config.report / SUMMARY).read_text(), parse_constant=pytest.fail)
        assert written["candidate"] == "canary/1" and written["rows"] == len(candidate)
        for name in (QQ_PLOT, HISTOGRAMS):
            assert (config.report / name).read_bytes()[:4] == b"\x89PNG"
    assert (config.report / REPORT).exists()


def test_scoring_decodes_like_the_workers_and_joins_by_id() -> None:
    model = load_model(resolve_model(ROOT / "models", "canary"))
    events = sample_events(5, seed=3, named=True)
    values = [encode_event(e) for e in events] + [b"garbage", None, encode_event(events[0])]
    values.append(b'{"id":"short","features":[1.0,2.0]}')
    ids, scores, invalid = score_inputs(values, model, batch_size=2)
    assert ids == [e["id"] for e in events]  # the repeated request is scored once
    assert invalid == 3
    x = np.array([[e["features"][n] for n in model.feature_names] for e in events], np.float32)
    assert np.array_equal(scores, model.predict(x).scores)

    def decision(rid: str, chosen: str | None, canary: float | None) -> bytes:
        return encode(Decision(id=rid, status="ok", chosen=chosen, deadline_ms=1, decided_ms=1,
                               ts=0, candidates=[
                                   Candidate("primary", "1", 0.25, 3.0, True),
                                   Candidate("canary", "1", canary, 1.0, canary is not None)]))

    values = [decision("a", "primary", 0.75), decision("b", "canary", 0.5),
              decision("c", None, None), b"not a decision", decision("a", "canary", 0.1)]
    assert production_scores(values) == {"a": 0.25, "b": 0.5}
    assert production_scores(values, "canary") == {"a": 0.75, "b": 0.5}
    assert production_scores(values, "primary") == {"a": 0.25, "b": 0.25, "c": 0.25}


def encode_event(event: dict) -> bytes:
    return json.dumps(event).encode()
