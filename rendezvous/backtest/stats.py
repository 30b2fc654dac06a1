"""Comparing two score distributions: rank and label agreement, quantiles, PSI and KS; input
drift against a training reference. Pure numpy/scipy."""

from __future__ import annotations

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
    result = stats.ks_2samp(expected, actual)
    return float(result.statistic), float(result.pvalue)
