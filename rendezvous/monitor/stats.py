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

    P(X < edge) is the lowest level the edge appears at: exact for a continuous value.
    A value repeated over levels has a mass of its own, which starts anywhere between
    the level before and that one, and the quantile before it may be numpy's
    interpolation towards it, at values the feature hardly takes (a bin of expected
    share 0.05-0.1 that reads 0 on stable data: PSI 0.3-0.7). So such a value is no
    edge: its bin and the one below are one, whose share the quantiles give exactly
    (a value repeated from level 0, the minimum, has nothing below it and stays an
    edge). An integer feature (a count, a flag: :func:`_integer_valued`), where every
    value is such a mass, is binned at integers instead: a quantile between two is an
    interpolation, so its edge is the next integer, below which lies that quantile's
    level; else P(X < edge) is the level it starts at less half the mass of one integer
    there (the midpoint of the levels it starts between, for a value repeated over
    levels or right after the quantile before).
    Quantiles without repeats (the bundled features') are binned as they always were.
    """
    if len(quantiles) != len(levels) or len(quantiles) < 2:
        raise ValueError("quantiles and levels must have the same length, at least 2")
    first: dict[float, int] = {}
    repeated: set[float] = set()
    for i, value in enumerate(quantiles):
        if value in first:
            repeated.add(value)
        else:
            first[value] = i
    integers = _integer_valued(quantiles, repeated)

    def below(edge: float) -> float:
        """P(X < edge)."""
        if integers:  # an interpolated quantile in (edge - 1, edge) gives P(X <= edge - 1)
            between = [i for i, q in enumerate(quantiles) if edge - 1 < q < edge]
            if between:
                return levels[between[-1]]
        i = first[edge]
        if not integers or i == 0:
            return levels[i]
        # The edge's own mass ends where its level lies; it starts below by about the
        # levels' step shared among the integers since the quantile before (one, or a
        # repeated value: the midpoint).
        share = 1.0 if edge in repeated else max(edge - quantiles[i - 1], 1.0)
        return levels[i] - (levels[i] - levels[i - 1]) / (2 * share)

    inner = quantiles[1:-1]
    edges = sorted({float(math.ceil(q)) for q in inner} if integers else
                   {q for q in inner if q not in repeated or first[q] == 0})
    bounds = [0.0] + [below(e) for e in edges] + [1.0]
    expected = [max(hi - lo, 0.0) for lo, hi in zip(bounds, bounds[1:], strict=False)]
    return edges, expected


INTERPOLATED = 2
"""Most quantiles of an integer feature that may fall between two integers (numpy's
interpolation where one value ends and the next begins)."""


def _integer_valued(quantiles: Sequence[float], repeated: set[float]) -> bool:
    """Whether quantiles look like an integer feature's: the minimum and maximum (values
    the feature took) are integers, so are all but :data:`INTERPOLATED` of the others,
    they are below :data:`INTEGER_LIMIT`, and one of them is an interpolation between
    two integers or a value other than the minimum repeats. Whole quantiles without
    either may be a continuous feature's (often exactly 0, or whole by chance): they
    are binned as before, which has no bin between two integers to read empty."""
    low, high = quantiles[0], quantiles[-1]
    if not (float(low).is_integer() and float(high).is_integer()):
        return False
    if max(abs(low), abs(high)) >= INTEGER_LIMIT:
        return False
    interpolated = sum(not float(q).is_integer() for q in quantiles)
    if interpolated > INTERPOLATED:
        return False
    return interpolated > 0 or any(v != low for v in repeated)


INTEGER_LIMIT = 1e5
"""Quantiles this large may be whole because they were rounded (``model import`` keeps six
significant digits), not because the feature counts: they are binned as numbers."""


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
