"""Run a backtest: read the archive, score, compare, write the report, and give a verdict.

The gates follow the candidate's task (its manifest's ``task``).

**Binary and regression**: scores (a probability, a predicted value) are compared by
quantiles, not raw values: two models' scores live on different scales, so each side's
score is mapped to its quantile under *its own* training reference (the score quantiles
in the model's manifest), and the gates are

- **rank agreement** (Spearman's rho of candidate vs production scores) at least
  ``min_agreement``: both order the requests alike;
- **quantile distance** (mean absolute difference of the two mapped scores' quantile
  functions, 0..1) at most ``max_quantile_distance``: each model puts the same share of
  requests at each of its own quantiles as it did on its training data, relative to
  production;

**Multiclass**: a predicted class's probability says little across two models, so the
gate is on the classes themselves:

- **label agreement** (share of the compared requests where the candidate's class is the
  one production answered, as the decision recorded it) at least ``min_label_agreement``,
  default :data:`DEFAULT_MIN_LABEL_AGREEMENT`. A decision without the class (recorded
  before candidates carried one) is left out and counted; when none has one, the gate
  fails closed.

**Every task**: **input PSI** (the worst feature's, archived inputs vs the candidate's
training reference: numbers on its quantile bins, strings on its category frequencies
with an unseen category counted) at most ``max_psi``: the traffic is what the candidate
was trained on.

Reported, not gated: a binary model's label agreement at ``threshold``, score PSI and KS,
and, when the archive holds the ``feedback`` topic (``RENDEZVOUS_DECOY__TOPICS`` with
``feedback``), the quality of both sides against those labels on the compared requests
(binary: AUC, accuracy; multiclass: accuracy, log loss; regression: RMSE, MAE, R²). Exit
status of ``rendezvous backtest`` (for CI gates): 0 passed; 3 failed, or no request could
be compared (the gate fails closed); 1 for errors (unreadable model, missing archive).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rendezvous.archive import TimeLike, read_archive, skipped_files
from rendezvous.backtest import stats
from rendezvous.backtest.report import plots_for, write_report
from rendezvous.backtest.scoring import CHOSEN, Comparison, compare
from rendezvous.messages import Label
from rendezvous.model import Model, ModelError, load_manifest, quantiles, resolve_model
from rendezvous.model.manifest import score_quantiles
from rendezvous.model.quantiles import Quantiles

log = logging.getLogger(__name__)

EXIT_PASSED = 0
EXIT_FAILED = 3

DEFAULT_MIN_LABEL_AGREEMENT = 0.8
"""A multiclass candidate must give production's class on at least 80 % of the requests:
the same bar as the monitor's canary alert (``max_disagreement`` 0.2, a canary that
disagrees with the primary on more than 20 % of the requests alerts). A candidate that
swaps two classes, or one that answers a constant class, is far below it."""

GATES: dict[str, tuple[str, ...]] = {
    "binary": ("agreement", "quantile_distance", "input_psi"),
    "regression": ("agreement", "quantile_distance", "input_psi"),
    "multiclass": ("label_agreement", "input_psi"),
}
"""The summary's numbers each task is gated on."""


@dataclass(frozen=True)
class BacktestConfig:
    """What to compare and the thresholds a candidate must meet."""

    archive: Path
    report: Path
    against: str = CHOSEN
    """Production model whose recorded answers are compared (``chosen``: the answer given)."""
    min_agreement: float = 0.7
    """Least rank agreement (Spearman) with production's scores (binary, regression)."""
    max_quantile_distance: float = 0.2
    """Largest distance between the quantile-mapped score distributions, 0..1 (binary,
    regression)."""
    max_psi: float = 0.2
    """Largest PSI of an input feature against the candidate's training reference."""
    min_label_agreement: float = DEFAULT_MIN_LABEL_AGREEMENT
    """Least share of requests where the candidate's class is production's (multiclass)."""
    models_dir: Path | None = None
    """Where production's model manifests are (for their reference quantiles)."""
    threshold: float = 0.5
    """Score at and above which the label is the positive class, on both sides (binary)."""
    start: TimeLike | None = None
    end: TimeLike | None = None
    batch_size: int = 4096


@dataclass(frozen=True)
class BacktestResult:
    """The summary written to ``summary.json``, and the exit status it implies."""

    summary: dict[str, Any]
    exit_status: int


NAN = float("nan")


def summarize(comparison: Comparison, model: Model, config: BacktestConfig,
              skipped: list[dict[str, str]], seconds: float) -> dict[str, Any]:
    """Every number of the report, with the verdict and the reasons for a failure."""
    task = model.task
    candidate, production = comparison.candidate, comparison.production
    ranked = task != "multiclass"
    rank = stats.rank_agreement(candidate, production) if ranked else NAN
    mapped_c, mapped_p, references = (_mapped(comparison, model, config.models_dir) if ranked
                                      else (np.zeros(0), np.zeros(0), {}))
    distance = quantiles.distance(mapped_c, mapped_p) if ranked else NAN
    inputs, unseen = _input_psi(comparison, model)
    worst = max(inputs.items(), key=lambda kv: kv[1], default=("", NAN))
    ks_statistic, ks_pvalue = stats.ks(production, candidate)
    labels = _labels(comparison, model) if task == "multiclass" else None
    if task == "binary":
        label_agreement = stats.agreement(candidate, production, config.threshold)
    else:
        label_agreement = labels["agreement"] if labels is not None else NAN
    failures = []
    if len(candidate) == 0:
        failures.append("no request could be compared (no archived inputs with a recorded "
                        f"score from {config.against!r})")
    else:
        if ranked and not rank >= config.min_agreement:
            failures.append(f"agreement {rank:.4f} < min {config.min_agreement} (rank "
                            "correlation with production)")
        if ranked and not distance <= config.max_quantile_distance:
            failures.append(f"quantile distance {distance:.4f} > max "
                            f"{config.max_quantile_distance}")
        if labels is not None and labels["labelled_rows"] == 0:
            failures.append(f"no production class recorded for any of the {len(candidate):,} "
                            "compared requests (decisions from before candidates carried "
                            "their class)")
        elif labels is not None and not label_agreement >= config.min_label_agreement:
            failures.append(f"label agreement {label_agreement:.4f} < min "
                            f"{config.min_label_agreement} (share of requests where the "
                            "candidate's class is production's)")
        if worst[0] and not worst[1] <= config.max_psi:
            failures.append(f"input PSI {worst[1]:.4f} > max {config.max_psi} "
                            f"(feature {worst[0]})")
    return {
        "candidate": f"{model.name}/{model.version}",
        "against": config.against,
        "task": task,
        "gates": list(GATES[task]),
        "classes": list(model.classes) if model.manifest.is_classifier else [],
        "archive": str(config.archive),
        "rows": len(candidate),
        "agreement": rank,
        "quantile_distance": distance,
        "input_psi": worst[1],
        "input_psi_feature": worst[0],
        "label_agreement": label_agreement,
        "threshold": config.threshold,
        "psi": (stats.value_psi(production, candidate) if task == "regression"
                else stats.psi(production, candidate)),
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
        "labels": labels,
        "quality": _quality(comparison, model, config),
        "feature_psi": inputs,
        "unseen_categories": unseen,
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
        "min_label_agreement": config.min_label_agreement,
        "plots": list(plots_for(task)),
        "passed": not failures,
        "failures": failures,
        "skipped_files": skipped,
    }


def _labels(comparison: Comparison, model: Model) -> dict[str, Any]:
    """A multiclass comparison's classes: agreement, where production's came from, and the
    confusion matrix (production's class by row, the candidate's by column)."""
    n = len(comparison.ids)
    production: list[Label | None] = list(comparison.production_labels or [None] * n)
    candidate: list[Label | None] = (list(comparison.candidate_labels)
                                     if comparison.candidate_labels is not None else [None] * n)
    labelled = sum(label is not None for label in production)
    names, counts = stats.confusion(candidate, production, model.classes)
    return {
        "agreement": stats.label_agreement(candidate, production),
        "labelled_rows": labelled,
        "unlabelled_rows": n - labelled,
        "confusion": {"labels": names, "counts": counts},
    }


def _quality(comparison: Comparison, model: Model, config: BacktestConfig
             ) -> dict[str, Any] | None:
    """Both sides' quality against the feedback labels of the compared requests (None when
    the archive holds no feedback)."""
    truth = comparison.truth
    if truth is None:
        return None
    task, classes = model.task, model.classes
    candidate = stats.quality(task, truth, comparison.candidate, comparison.candidate_labels,
                              comparison.candidate_probabilities, classes)
    production_truth = truth
    production_labels: list[Any] | None = None
    if task == "binary" and len(classes) >= 2:
        production_labels = [classes[1] if s >= config.threshold else classes[0]
                             for s in comparison.production.tolist()]
    elif task == "multiclass":
        production_labels = list(comparison.production_labels or [None] * len(truth))
        # a request whose production class is unknown is not production's mistake
        production_truth = [t if p is not None else None
                            for t, p in zip(truth, production_labels, strict=True)]
    production = stats.quality(task, production_truth, comparison.production,
                               production_labels, None, classes)
    production.pop("log_loss", None)  # production's probabilities are not recorded
    return {"labelled_rows": sum(t is not None for t in truth),
            "candidate": candidate, "production": production}


def _mapped(comparison: Comparison, model: Model, models_dir: Path | None
            ) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """Both sides' scores mapped to quantiles of their own reference; which reference each
    production model's scores were mapped with."""
    if len(comparison.candidate) == 0:
        return np.zeros(0), np.zeros(0), {}
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


def _input_psi(comparison: Comparison, model: Model) -> tuple[dict[str, float], dict[str, int]]:
    """PSI of every feature of the archived inputs against the candidate's reference
    (numbers on its quantile bins, strings on its category shares), and per string feature
    how many inputs had a category the manifest never saw."""
    rows, ref = comparison.rows, model.manifest.reference
    found: dict[str, float] = {}
    unseen: dict[str, int] = {}
    if rows is None or len(rows) == 0:
        return found, unseen
    for i, feature in enumerate(model.manifest.features):
        reference = ref.features.get(feature.name)
        if reference is None:
            continue
        if feature.is_string:
            if reference.categories:
                found[feature.name], unseen[feature.name] = stats.category_psi(
                    rows[:, i].tolist(), reference.categories, feature.categories or ())
        elif len(reference.quantiles) == len(ref.levels) >= 2:
            found[feature.name] = stats.feature_psi(rows[:, i].astype(np.float64), ref.levels,
                                                    reference.quantiles)
    return found, unseen


def backtest(model: Model, config: BacktestConfig) -> BacktestResult:
    """Compare ``model`` with the production answers archived under ``config.archive``."""
    started = time.perf_counter()
    inputs = read_archive(config.archive, "input", config.start, config.end)
    decisions = read_archive(config.archive, "decisions", config.start, config.end)
    # A label arrives after its answer: feedback is read from the window's start on.
    feedback = read_archive(config.archive, "feedback", config.start)
    skipped = [skip for table in (inputs, decisions, feedback) for skip in skipped_files(table)]
    comparison = compare(inputs, decisions, model, config.against, config.batch_size,
                         feedback)
    summary = summarize(comparison, model, config, skipped, time.perf_counter() - started)
    write_report(config.report, summary, comparison.candidate, comparison.production)
    status = EXIT_PASSED if summary["passed"] else EXIT_FAILED
    # debug: each caller words the result for its user (`rendezvous backtest`'s summary
    # lines, the demo's step line); at info it would repeat them between them
    log.debug("backtest %s (%s): %d rows, %s -> exit %d", summary["candidate"], model.task,
             summary["rows"], ", ".join(f"{gate} {_number(summary[gate])}"
                                        for gate in summary["gates"]), status)
    return BacktestResult(summary, status)


def _number(value: float) -> str:
    return "n/a" if isinstance(value, float) and math.isnan(value) else f"{value:.4f}"
