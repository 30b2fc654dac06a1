"""Pure statistics of the monitor: PSI, quantile distance, accuracy and AUC, labels.

No Kafka and no faust here, so every number the monitor reports can be checked
by a unit test against a direct computation.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence

from ddsketch import DDSketch

PSI_FLOOR = 1e-4
"""Smallest proportion used in PSI, so an empty bin gives a large but finite term."""

DISTANCE_LEVELS = [round(i / 20, 2) for i in range(1, 20)]
"""Quantile levels (0.05 ... 0.95) at which two score distributions are compared."""

AUC_BINS = 1000
"""Score resolution of the AUC histograms (scores are rounded to 1/AUC_BINS)."""


def psi_bins(quantiles: Sequence[float],
             levels: Sequence[float]) -> tuple[list[float], list[float]]:
    """Bin edges and expected proportions from a reference's quantiles.

    ``quantiles[i]`` is the reference value at ``levels[i]`` (0 ... 1). The
    inner quantiles, deduplicated, are the edges: bin ``k`` holds
    ``edges[k-1] <= x < edges[k]``. A value repeated over several levels (a
    feature that is often exactly 0) carries its mass into the bin it starts,
    so the expected proportions still sum to 1.
    """
    if len(quantiles) != len(levels) or len(quantiles) < 2:
        raise ValueError("quantiles and levels must have the same length, at least 2")
    first_level: dict[float, float] = {}
    for value, level in zip(quantiles, levels, strict=True):
        first_level.setdefault(value, level)  # P(X < value) ~ the lowest level it appears at
    edges = sorted({q for q in quantiles[1:-1]})
    bounds = [0.0] + [first_level[e] for e in edges] + [1.0]
    expected = [max(hi - lo, 0.0) for lo, hi in zip(bounds, bounds[1:], strict=False)]
    return edges, expected


def bin_index(edges: Sequence[float], value: float) -> int:
    """The bin of ``value`` among ``len(edges) + 1`` bins."""
    return bisect.bisect_right(edges, value)


def psi(expected: Sequence[float], counts: Sequence[int]) -> float:
    """Population stability index of observed ``counts`` against ``expected`` proportions.

    ``sum((a - e) * ln(a / e))`` with both proportions floored at
    :data:`PSI_FLOOR`. NaN when nothing was observed.
    """
    total = sum(counts)
    if total == 0:
        return math.nan
    value = 0.0
    for e, c in zip(expected, counts, strict=True):
        e = max(e, PSI_FLOOR)
        a = max(c / total, PSI_FLOOR)
        value += (a - e) * math.log(a / e)
    return value


def quantile_distance(a: DDSketch, b: DDSketch,
                      levels: Sequence[float] = DISTANCE_LEVELS) -> float:
    """Mean absolute difference of two distributions' quantiles (a discrete Wasserstein-1).

    NaN when either sketch is empty.
    """
    if a.count == 0 or b.count == 0:
        return math.nan
    diffs = []
    for level in levels:
        qa, qb = a.get_quantile_value(level), b.get_quantile_value(level)
        if qa is None or qb is None:
            return math.nan
        diffs.append(abs(qa - qb))
    return sum(diffs) / len(diffs)


def score_bin(score: float) -> int:
    """The AUC histogram bin of a score in [0, 1]."""
    return min(max(round(score * AUC_BINS), 0), AUC_BINS)


def auc(positives: Mapping[int, int], negatives: Mapping[int, int]) -> float:
    """ROC AUC from score histograms of positive and negative examples (ties count 1/2).

    Equals the Mann-Whitney statistic of the binned scores; NaN without both classes.
    """
    n_pos, n_neg = sum(positives.values()), sum(negatives.values())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    below = 0  # negatives with a lower score than the current bin
    wins = 0.0
    for b in sorted(set(positives) | set(negatives)):
        pos, neg = positives.get(b, 0), negatives.get(b, 0)
        wins += pos * (below + neg / 2)
        below += neg
    return wins / (n_pos * n_neg)


def accuracy(correct: int, total: int) -> float:
    """Fraction of correct predictions; NaN when there were none."""
    return correct / total if total else math.nan


def predicted_label(score: float, threshold: float = 0.5) -> int:
    """The class a score predicts (1 when ``score >= threshold``)."""
    return 1 if score >= threshold else 0


def label_key(label: object) -> str:
    """A class label as text, so that one class compares equal however it was written: a
    model's class ``1``, feedback ``1`` or ``"1"`` (and ``1.0``, a JSON number) are all
    ``"1"``; ``"cat"`` stays ``"cat"``."""
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    return str(label)


def as_number(label: object) -> float | None:
    """A regression's feedback label as a number: an int or float, or text that reads as
    a finite number (a CSV's cell); None otherwise."""
    if isinstance(label, bool):
        return None
    if isinstance(label, int | float):
        value = float(label)
    elif isinstance(label, str):
        try:
            value = float(label)
        except ValueError:
            return None
    else:
        return None
    return value if math.isfinite(value) else None
