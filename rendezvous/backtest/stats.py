"""Comparing two models' answers: rank and label agreement, a confusion matrix, quantiles,
PSI and KS; input drift against a training reference (numbers and categories); quality
against ground-truth labels per task. Pure numpy/scipy."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

QUANTILE_LEVELS = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
PSI_BINS = 10
PSI_FLOOR = 1e-4
"""Share given to an empty bin, so PSI stays finite (the usual convention)."""


def agreement(candidate: np.ndarray, production: np.ndarray, threshold: float = 0.5) -> float:
    """Share of rows where both scores fall on the same side of ``threshold``
    (label 1 when score >= threshold). NaN for no rows."""
    if len(candidate) != len(production):
        raise ValueError(f"{len(candidate)} candidate scores vs {len(production)} production")
    if len(candidate) == 0:
        return float("nan")
    return float(np.mean((candidate >= threshold) == (production >= threshold)))


def rank_agreement(candidate: np.ndarray, production: np.ndarray) -> float:
    """Spearman's rank correlation of the two scores on the same rows, in [-1, 1]: 1 when
    both order the requests alike, whatever their scales. NaN for fewer than 2 rows or a
    constant side."""
    if len(candidate) != len(production):
        raise ValueError(f"{len(candidate)} candidate scores vs {len(production)} production")
    if len(candidate) < 2 or np.ptp(candidate) == 0 or np.ptp(production) == 0:
        return float("nan")
    return float(stats.spearmanr(candidate, production).statistic)


def feature_psi(rows: np.ndarray, levels: list[float], reference: list[float]) -> float:
    """PSI of one feature's values ``rows`` against its reference quantiles at ``levels``:
    the reference's inner quantiles are the bins (as the monitor bins them)."""
    from rendezvous.monitor.stats import psi as binned_psi
    from rendezvous.monitor.stats import psi_bins

    if len(rows) == 0:
        return float("nan")
    edges, expected = psi_bins(reference, levels)
    counts = np.bincount(np.searchsorted(edges, rows, side="right"), minlength=len(expected))
    return float(binned_psi(expected, counts.tolist()))


def quantiles(scores: np.ndarray, levels: tuple[float, ...] = QUANTILE_LEVELS) -> list[float]:
    """The scores' quantiles at ``levels`` (NaN each for no scores)."""
    if len(scores) == 0:
        return [float("nan")] * len(levels)
    return [float(q) for q in np.quantile(scores, levels)]


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index of ``actual`` against ``expected``, on ``bins`` equal-width
    bins over [0, 1] (scores are probabilities; quantile bins collapse when most scores sit
    at 0 or 1). ``sum((a - e) * ln(a / e))``: < 0.1 stable, 0.1-0.2 moderate, > 0.2 shifted.
    """
    if len(expected) == 0 or len(actual) == 0:
        return float("nan")
    edges = np.linspace(0.0, 1.0, bins + 1)
    e = np.histogram(np.clip(expected, 0.0, 1.0), edges)[0] / len(expected)
    a = np.histogram(np.clip(actual, 0.0, 1.0), edges)[0] / len(actual)
    e, a = np.maximum(e, PSI_FLOOR), np.maximum(a, PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def ks(expected: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov ``(statistic, p-value)``; NaNs for no rows."""
    if len(expected) == 0 or len(actual) == 0:
        return float("nan"), float("nan")
    with warnings.catch_warnings():  # "exact calculation unsuccessful": it falls back to asymp
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ks_2samp(expected, actual)
    return float(result.statistic), float(result.pvalue)


def label_key(label: object) -> str:
    """A class label as text, so labels compare across sources: ``2``, ``2.0`` (a JSON
    number) and ``"2"`` are one class; ``None`` stays ``""`` (no label)."""
    if label is None:
        return ""
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    if isinstance(label, np.generic):
        return label_key(label.item())
    return str(label)


def label_agreement(candidate: Sequence[object], production: Sequence[object | None]) -> float:
    """Share of rows where the candidate's class equals production's, over the rows where
    production's class is known (``None``: unknown, left out). NaN when none is known."""
    if len(candidate) != len(production):
        raise ValueError(f"{len(candidate)} candidate labels vs {len(production)} production")
    pairs = [(label_key(c), label_key(p)) for c, p in zip(candidate, production, strict=True)
             if p is not None]
    if not pairs:
        return float("nan")
    return float(np.mean([c == p for c, p in pairs]))


def confusion(candidate: Sequence[object], production: Sequence[object | None],
              classes: Sequence[object] = ()) -> tuple[list[str], list[list[int]]]:
    """``(labels, counts)``: ``counts[i][j]`` rows production labelled ``labels[i]`` and the
    candidate ``labels[j]`` (rows without a production label left out). ``labels``: the
    model's ``classes`` in order, then any other label seen, sorted."""
    pairs = [(label_key(p), label_key(c)) for c, p in zip(candidate, production, strict=True)
             if p is not None]
    labels = list(dict.fromkeys(label_key(c) for c in classes))
    labels += sorted({k for pair in pairs for k in pair} - set(labels))
    index = {k: i for i, k in enumerate(labels)}
    counts = [[0] * len(labels) for _ in labels]
    for p, c in pairs:
        counts[index[p]][index[c]] += 1
    return labels, counts


def category_psi(values: Sequence[object], shares: Mapping[str, float],
                 known: Iterable[str] = ()) -> tuple[float, int]:
    """``(PSI, unseen)`` of one string feature's ``values`` against its reference category
    ``shares``, binned as the monitor bins them: one bin per listed category, one for the
    rest (the :data:`~rendezvous.model.manifest.OTHER_CATEGORY` share, else what the listed
    ones leave; a ``known`` category, seen in training but not listed, falls there) and one
    for a category the manifest never saw (expected share 0, floored), whose values are
    counted in ``unseen``. NaN for no values."""
    from rendezvous.model.manifest import OTHER_CATEGORY
    from rendezvous.monitor.stats import psi as binned_psi

    listed = {c: float(v) for c, v in shares.items() if c != OTHER_CATEGORY}
    rest = shares.get(OTHER_CATEGORY)
    if rest is None:
        rest = max(0.0, 1.0 - sum(listed.values()))
    index = {c: i for i, c in enumerate(listed)}
    for category in known:
        index.setdefault(category, len(listed))
    unseen_bin = len(listed) + 1
    counts = [0] * (len(listed) + 2)
    for value in values:
        counts[index.get(str(value), unseen_bin)] += 1
    if len(values) == 0:
        return float("nan"), 0
    return float(binned_psi([*listed.values(), float(rest), 0.0], counts)), counts[unseen_bin]


def value_psi(expected: np.ndarray, actual: np.ndarray, bins: int = PSI_BINS) -> float:
    """PSI of ``actual`` against ``expected`` on the deciles of ``expected`` (for scores that
    are no probabilities, such as a regression's values); NaN when either is empty."""
    if len(expected) == 0 or len(actual) == 0:
        return float("nan")
    levels = [i / bins for i in range(bins + 1)]
    return feature_psi(np.asarray(actual, dtype=np.float64), levels,
                       np.quantile(np.asarray(expected, dtype=np.float64), levels).tolist())


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC of ``scores`` for the boolean truth ``positive`` (the Mann-Whitney statistic,
    ties count 1/2); NaN without both classes."""
    n_pos = int(np.sum(positive))
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = stats.rankdata(scores)
    return float((np.sum(ranks[positive]) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


LOG_LOSS_EPS = 1e-15
"""Smallest probability given to the true class in the log loss (scikit-learn's clip)."""


def quality(task: str, truth: Sequence[object], scores: np.ndarray,
            labels: Sequence[object] | None = None, probabilities: np.ndarray | None = None,
            classes: Sequence[object] = ()) -> dict[str, float]:
    """Quality against ground-truth labels ``truth`` (rows with ``None`` left out), per task:
    binary ``auc`` (of ``scores``, the positive class being ``classes[1]``) and
    ``accuracy`` (of ``labels``); multiclass ``accuracy`` and ``log_loss`` (of
    ``probabilities`` in ``classes`` order; a true class the model does not have counts as
    wrong and is left out of the log loss); regression ``rmse``, ``mae`` and ``r2`` (of
    ``scores``; a true value that is no number is left out). ``rows``: rows with a truth
    that counted. NaN for a metric that cannot be computed."""
    keep = [i for i, t in enumerate(truth) if t is not None]
    if task == "regression":
        keep = [i for i in keep if isinstance(truth[i], int | float)
                and not isinstance(truth[i], bool)]
        y = np.array([float(truth[i]) for i in keep])  # type: ignore[arg-type]
        predicted = np.asarray(scores, dtype=np.float64)[keep]
        if not keep:
            return {"rows": 0, "rmse": float("nan"), "mae": float("nan"), "r2": float("nan")}
        errors = predicted - y
        total = float(np.sum((y - y.mean()) ** 2))
        return {"rows": len(keep), "rmse": float(np.sqrt(np.mean(errors ** 2))),
                "mae": float(np.mean(np.abs(errors))),
                "r2": 1.0 - float(np.sum(errors ** 2)) / total if total > 0 else float("nan")}
    keys = [label_key(c) for c in classes]
    true = [label_key(truth[i]) for i in keep]
    result: dict[str, float] = {"rows": len(keep)}
    if labels is None or not keep:
        result["accuracy"] = float("nan")
    else:
        hits = [label_key(labels[i]) == t for i, t in zip(keep, true, strict=True)]
        result["accuracy"] = float(np.mean(hits))
    if task == "binary":
        known = [j for j, t in enumerate(true) if t in keys[:2]] if len(keys) >= 2 else []
        result["auc"] = auc(np.asarray(scores, dtype=np.float64)[[keep[j] for j in known]],
                            np.array([true[j] == keys[1] for j in known], dtype=bool))
    elif task == "multiclass":
        index = {k: i for i, k in enumerate(keys)}
        pairs = [(keep[j], index[t]) for j, t in enumerate(true) if t in index]
        if probabilities is None or not pairs:
            result["log_loss"] = float("nan")
        else:
            rows = np.array([r for r, _ in pairs], dtype=np.int64)
            columns = np.array([c for _, c in pairs], dtype=np.int64)
            p = probabilities[rows, columns]
            result["log_loss"] = float(-np.mean(np.log(np.clip(p, LOG_LOSS_EPS, 1.0))))
    return result
