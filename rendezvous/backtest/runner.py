"""Run a backtest: read the archive, score, compare, write the report, and give a verdict.

Scores are compared by quantiles, not raw values: two models' scores live on different
scales, so each side's score is mapped to its quantile under *its own* training
reference (the score quantiles in the model's manifest), and the gates are

- **rank agreement** (Spearman's rho of candidate vs production scores) at least
  ``min_agreement``: both order the requests alike;
- **quantile distance** (mean absolute difference of the two mapped scores' quantile
  functions, 0..1) at most ``max_quantile_distance``: each model puts the same share of
  requests at each of its own quantiles as it did on its training data, relative to
  production;
- **input PSI** (the worst feature's, archived inputs vs the candidate's training
  reference) at most ``max_psi``: the traffic is what the candidate was trained on.

Label agreement, score PSI and KS on raw scores are reported, not gated. Exit status
of ``rendezvous backtest`` (for CI gates): 0 passed; 3 failed, or no request could be
compared (the gate fails closed); 1 for errors (unreadable model, missing archive).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rendezvous.archive import TimeLike, read_archive, skipped_files
from rendezvous.backtest import stats
from rendezvous.backtest.report import write_report
from rendezvous.backtest.scoring import CHOSEN, Comparison, compare
from rendezvous.model import Model, ModelError, load_manifest, quantiles, resolve_model
from rendezvous.model.manifest import score_quantiles
from rendezvous.model.quantiles import Quantiles

log = logging.getLogger(__name__)

EXIT_PASSED = 0
EXIT_FAILED = 3


@dataclass(frozen=True)
class BacktestConfig:
    """What to compare and the thresholds a candidate must meet."""

    archive: Path
    report: Path
    against: str = CHOSEN
    """Production model whose recorded scores are compared (``chosen``: the answer given)."""
    min_agreement: float = 0.7
    """Least rank agreement (Spearman) with production's scores."""
    max_quantile_distance: float = 0.2
    """Largest distance between the quantile-mapped score distributions (0..1)."""
    max_psi: float = 0.2
    """Largest PSI of an input feature against the candidate's training reference."""
    models_dir: Path | None = None
    """Where production's model manifests are (for their reference quantiles)."""
    threshold: float = 0.5
    """Score at and above which the label is 1, on both sides."""
    start: TimeLike | None = None
    end: TimeLike | None = None
    batch_size: int = 4096


@dataclass(frozen=True)
class BacktestResult:
    """The summary written to ``summary.json``, and the exit status it implies."""

    summary: dict[str, Any]
    exit_status: int


def summarize(comparison: Comparison, model: Model, config: BacktestConfig,
              skipped: list[dict[str, str]], seconds: float) -> dict[str, Any]:
    """Every number of the report, with the verdict and the reasons for a failure."""
    candidate, production = comparison.candidate, comparison.production
    rank = stats.rank_agreement(candidate, production)
    mapped_c, mapped_p, references = _mapped(comparison, model, config.models_dir)
    distance = quantiles.distance(mapped_c, mapped_p)
    inputs = _input_psi(comparison, model)
    worst = max(inputs.items(), key=lambda kv: kv[1], default=("", float("nan")))
    ks_statistic, ks_pvalue = stats.ks(production, candidate)
    failures = []
    if len(candidate) == 0:
        failures.append("no request could be compared (no archived inputs with a recorded "
                        f"score from {config.against!r})")
    else:
        if not rank >= config.min_agreement:
            failures.append(f"agreement {rank:.4f} < min {config.min_agreement} (rank "
                            "correlation with production)")
        if not distance <= config.max_quantile_distance:
            failures.append(f"quantile distance {distance:.4f} > max "
                            f"{config.max_quantile_distance}")
        if worst[0] and not worst[1] <= config.max_psi:
            failures.append(f"input PSI {worst[1]:.4f} > max {config.max_psi} "
                            f"(feature {worst[0]})")
    return {
        "candidate": f"{model.name}/{model.version}",
        "against": config.against,
        "archive": str(config.archive),
        "rows": len(candidate),
        "agreement": rank,
        "quantile_distance": distance,
        "input_psi": worst[1],
        "input_psi_feature": worst[0],
        "label_agreement": stats.agreement(candidate, production, config.threshold),
        "threshold": config.threshold,
        "psi": stats.psi(production, candidate),
        "ks_statistic": ks_statistic,
        "ks_pvalue": ks_pvalue,
        "quantiles": {
            "levels": list(stats.QUANTILE_LEVELS),
            "candidate": stats.quantiles(candidate),
            "production": stats.quantiles(production),
            "candidate_mapped": stats.quantiles(mapped_c),
            "production_mapped": stats.quantiles(mapped_p),
        },
        "references": references,
        "feature_psi": inputs,
        "inputs": comparison.inputs,
        "invalid_inputs": comparison.invalid,
        "scored": comparison.scored,
        "unmatched": comparison.unmatched,
        "decisions": comparison.decisions,
        "rows_per_s": comparison.rows_per_s,
        "seconds": seconds,
        "min_agreement": config.min_agreement,
        "max_quantile_distance": config.max_quantile_distance,
        "max_psi": config.max_psi,
        "passed": not failures,
        "failures": failures,
        "skipped_files": skipped,
    }


def _mapped(comparison: Comparison, model: Model, models_dir: Path | None
            ) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """Both sides' scores mapped to quantiles of their own reference; which reference each
    production model's scores were mapped with."""
    own = score_quantiles(model.manifest) or Quantiles.from_scores(comparison.candidate)
    candidate = own.quantiles_of(comparison.candidate)
    production = np.empty(len(comparison.production))
    references: dict[str, str] = {}
    groups: dict[tuple[str, str], list[int]] = {}
    for i, key in enumerate(comparison.production_models or
                            [("", "")] * len(comparison.production)):
        groups.setdefault(key, []).append(i)
    for (name, version), rows in groups.items():
        scores = comparison.production[rows]
        function, source = _reference(name, version, models_dir)
        if function is None:  # no manifest: production's own scores are its reference
            function = Quantiles.from_scores(scores)
        production[rows] = function.quantiles_of(scores)
        references[f"{name or 'production'}:{version or '?'}"] = source
    return candidate, production, references


def _reference(name: str, version: str, models_dir: Path | None
               ) -> tuple[Quantiles | None, str]:
    if not name or models_dir is None:
        return None, "its own scores (no manifest known)"
    try:
        manifest = load_manifest(resolve_model(models_dir, name, version))
    except ModelError:
        return None, f"its own scores (no manifest of {name} {version} in {models_dir})"
    found = score_quantiles(manifest)
    return found, ("its manifest" if found is not None
                   else f"its own scores (no score quantiles in {name} {version}'s manifest)")


def _input_psi(comparison: Comparison, model: Model) -> dict[str, float]:
    """PSI of every feature of the archived inputs against the candidate's reference."""
    rows, ref = comparison.rows, model.manifest.reference
    if rows is None or len(rows) == 0:
        return {}
    return {name: stats.feature_psi(rows[:, i], ref.levels, ref.features[name].quantiles)
            for i, name in enumerate(model.feature_names) if name in ref.features}


def backtest(model: Model, config: BacktestConfig) -> BacktestResult:
    """Compare ``model`` with the production answers archived under ``config.archive``."""
    started = time.perf_counter()
    inputs = read_archive(config.archive, "input", config.start, config.end)
    decisions = read_archive(config.archive, "decisions", config.start, config.end)
    skipped = skipped_files(inputs) + skipped_files(decisions)
    comparison = compare(inputs, decisions, model, config.against, config.batch_size)
    summary = summarize(comparison, model, config, skipped, time.perf_counter() - started)
    write_report(config.report, summary, comparison.candidate, comparison.production)
    status = EXIT_PASSED if summary["passed"] else EXIT_FAILED
    log.info("backtest %s: %d rows, agreement %s, quantile distance %s, input PSI %s -> exit %d",
             summary["candidate"], summary["rows"], summary["agreement"],
             summary["quantile_distance"], summary["input_psi"], status)
    return BacktestResult(summary, status)
