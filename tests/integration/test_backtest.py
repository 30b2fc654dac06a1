"""Backtest from a real decoy archive of inputs and the decisions production recorded.

The decisions are built here as serve writes them: each candidate's score is the
real model's score for that input (computed with ``load_model``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rendezvous.backtest import stats
from rendezvous.local.supervisor import Supervisor
from rendezvous.messages import Candidate, Decision, encode
from rendezvous.model import load_model, resolve_model, sample_events
from rendezvous.registry import read_registry
from rendezvous.settings import Settings
from tests.integration.test_decoy import decoy_args, produce, wait_for_archive
from tests.model_versions import copy_version

pytestmark = pytest.mark.integration

N = 400
MALFORMED = [b"not json", b'{"id":"short","features":[1.0]}', b""]


def backtest(env: dict[str, str], root: Path, model: Path, report: Path,
             *args: str) -> tuple[int, dict]:
    done = subprocess.run([sys.executable, "-m", "rendezvous", "backtest", "--archive", str(root),
                           "--model", str(model), "--report", str(report), *args],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 3), done.stderr
    assert (report / "report.html").exists() and (report / "qq.png").exists()
    return done.returncode, json.loads((report / "summary.json").read_text())


@pytest.fixture
def recorded(settings: Settings, supervisor: Supervisor,
             tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """An archive of N inputs (+ malformed ones) and their decisions; the true scores."""
    primary = load_model(resolve_model(settings.models_dir, "primary"))
    canary = load_model(resolve_model(settings.models_dir, "canary"))
    events = sample_events(N, seed=11, named=True)
    x = np.array([[e["features"][n] for n in primary.feature_names] for e in events], np.float32)
    p_scores, c_scores = primary.predict(x).scores, canary.predict(x).scores
    decisions = [
        (e["id"].encode(), encode(Decision(
            id=e["id"], status="ok", chosen="primary", deadline_ms=50.0, decided_ms=1.0, ts=0.0,
            candidates=[Candidate("primary", primary.version, float(p), 12.0, True),
                        Candidate("canary", canary.version, float(c), 2.0, True)])), None)
        for e, p, c in zip(events, p_scores, c_scores, strict=True)]
    inputs = [(e["id"].encode(), json.dumps(e).encode(), None) for e in events]
    inputs += [(b"bad", value, None) for value in MALFORMED]

    root = tmp_path / "archive"
    supervisor.start("decoy", decoy_args(root))
    produce(settings, inputs)
    produce(settings, decisions, topic="decisions")
    wait_for_archive(root, len(inputs))
    wait_for_archive(root, len(decisions), topic="decisions")
    supervisor.terminate("decoy")
    return root, p_scores, c_scores


def test_primary_against_its_own_decisions_agrees_and_passes(
        recorded: tuple[Path, np.ndarray, np.ndarray], settings: Settings,
        component_env: dict[str, str], tmp_path: Path) -> None:
    root, _p, _c = recorded
    model = resolve_model(settings.models_dir, "primary")
    for against in ("chosen", "primary"):
        status, summary = backtest(component_env, root, model, tmp_path / against,
                                   "--against", against)
        assert status == 0, summary["failures"]
        assert summary["rows"] == N and summary["agreement"] >= 0.99
        assert summary["psi"] == pytest.approx(0.0, abs=1e-6)
        assert summary["quantile_distance"] == pytest.approx(0.0, abs=1e-9)
        assert summary["invalid_inputs"] == len(MALFORMED) and summary["unmatched"] == 0
        assert summary["rows_per_s"] > 0 and summary["skipped_files"] == []


def test_canary_against_primary_passes_the_quantile_gates(
        recorded: tuple[Path, np.ndarray, np.ndarray], settings: Settings,
        component_env: dict[str, str], tmp_path: Path) -> None:
    root, p_scores, c_scores = recorded
    expected = stats.rank_agreement(c_scores, p_scores)
    model = resolve_model(settings.models_dir, "canary")
    status, summary = backtest(component_env, root, model, tmp_path / "default",
                               "--against", "primary")
    assert summary["rows"] == N
    assert summary["agreement"] == pytest.approx(expected, abs=1e-12)
    assert summary["label_agreement"] == pytest.approx(stats.agreement(c_scores, p_scores))
    assert expected < 1, "canary and primary rank every sampled row alike"
    assert summary["psi"] == pytest.approx(stats.psi(p_scores, c_scores))
    assert status == 0, summary["failures"]  # the bundled canary passes the default gates
    assert summary["references"] == {"primary:1": "its manifest"}
    # thresholds decide the exit status, for a CI gate
    loose, _ = backtest(component_env, root, model, tmp_path / "loose", "--against", "primary",
                        "--min-agreement", str(expected - 0.001))
    tight, tight_summary = backtest(component_env, root, model, tmp_path / "tight",
                                    "--against", "primary", "--min-agreement",
                                    str(expected + 0.001))
    assert (loose, tight) == (0, 3)
    assert tight_summary["failures"][0].startswith("agreement")
    _, verdicts = read_registry(settings)  # each run recorded its verdict; the last counts
    verdict = verdicts[("canary", "1")]
    assert not verdict.passed and verdict.reasons[0].startswith("agreement")


def test_a_model_with_shuffled_features_fails(
        recorded: tuple[Path, np.ndarray, np.ndarray], settings: Settings,
        component_env: dict[str, str], tmp_path: Path) -> None:
    root, _p, _c = recorded
    broken = copy_version(resolve_model(settings.models_dir, "primary"), tmp_path / "models",
                          "9", shuffle_seed=0)
    status, summary = backtest(component_env, root, broken, tmp_path / "broken",
                               "--against", "primary", "--actor", "ci")
    assert status == 3
    assert summary["failures"][0].startswith("agreement"), summary["failures"]
    _, verdicts = read_registry(settings)
    verdict = verdicts[("primary", "9")]
    assert not verdict.passed and verdict.actor == "ci"
