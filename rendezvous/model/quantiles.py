"""Quantile functions of model scores: build one from scores, map a score to its quantile and back.

A :class:`Quantiles` is a table: ``values[i]`` is the score at quantile
``levels[i]``, linear in between. Two models' tables put their scores on one
scale without calibration: a score of model A maps to A's quantile of it, and
that quantile to B's score there (:func:`map_score`), so "above 0.8" keeps its
meaning (the same share of traffic) whichever model answered.

The scalar methods (:meth:`~Quantiles.quantile_of`, :meth:`~Quantiles.score_at`)
are for the hot path: two binary searches over precomputed Python lists, no
allocation. The array methods do the same over numpy arrays (backtests).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence

import numpy as np

DEFAULT_LEVELS: tuple[float, ...] = tuple(i / 100 for i in range(101))
"""Quantile levels of a score table: 0, 0.01, ..., 1 (101 points)."""


class Quantiles:
    """A monotone quantile function given at ``levels`` (increasing, from 0 to 1)."""

    __slots__ = ("_levels", "_values", "levels", "values")

    def __init__(self, levels: Sequence[float], values: Sequence[float]) -> None:
        lv, vs = [float(x) for x in levels], [float(x) for x in values]
        if len(lv) != len(vs) or len(lv) < 2:
            raise ValueError(f"need as many levels as values (>= 2), got {len(lv)} and {len(vs)}")
        if not all(math.isfinite(x) for x in lv + vs):
            raise ValueError("levels and values must be finite")
        if lv[0] != 0.0 or lv[-1] != 1.0 or any(b <= a for a, b in zip(lv, lv[1:], strict=False)):
            raise ValueError("levels must increase strictly from 0 to 1")
        if any(b < a for a, b in zip(vs, vs[1:], strict=False)):
            raise ValueError("values must not decrease")
        self._levels, self._values = lv, vs
        self.levels = np.asarray(lv)
        self.values = np.asarray(vs)

    @classmethod
    def from_scores(cls, scores: Sequence[float] | np.ndarray,
                    levels: Sequence[float] = DEFAULT_LEVELS, digits: int = 6) -> Quantiles:
        """The empirical quantile function of ``scores`` (linear interpolation, numpy's
        default), each value rounded to ``digits`` significant digits (readable manifests)."""
        data = np.asarray(scores, dtype=np.float64)
        if data.size == 0 or not np.isfinite(data).all():
            raise ValueError("need at least one score, all finite")
        values = [float(f"{v:.{digits}g}") for v in np.quantile(data, list(levels))]
        # Rounding keeps the order of distinct values, but make sure of it.
        return cls(levels, np.maximum.accumulate(values).tolist())

    def quantile_of(self, score: float) -> float:
        """The quantile of ``score`` (the inverse of :meth:`score_at`), in [0, 1].

        A score the table holds at several levels (a model that often says
        exactly 0 or 1) gets the middle of them; below the lowest value 0,
        above the highest 1.
        """
        values, levels = self._values, self._levels
        hi = bisect_right(values, score)
        if hi == 0:
            return 0.0
        lo = bisect_left(values, score, 0, hi)
        if lo < hi:  # score == values[lo] == ... == values[hi - 1]
            return (levels[lo] + levels[hi - 1]) * 0.5
        if hi == len(values):
            return 1.0
        x0, x1 = values[hi - 1], values[hi]
        return levels[hi - 1] + (levels[hi] - levels[hi - 1]) * (score - x0) / (x1 - x0)

    def score_at(self, quantile: float) -> float:
        """The score at ``quantile`` (clamped to [0, 1]), linear between levels."""
        levels, values = self._levels, self._values
        i = bisect_right(levels, quantile)
        if i >= len(levels):
            return values[-1]
        if i == 0:
            return values[0]
        q0, q1 = levels[i - 1], levels[i]
        return values[i - 1] + (values[i] - values[i - 1]) * (quantile - q0) / (q1 - q0)

    def quantiles_of(self, scores: np.ndarray) -> np.ndarray:
        """:meth:`quantile_of` of every score in an array."""
        s = np.asarray(scores, dtype=np.float64)
        values, levels = self.values, self.levels
        lo = np.searchsorted(values, s, "left")
        hi = np.searchsorted(values, s, "right")
        n = len(values)
        i = np.clip(hi, 1, n - 1)
        x0, x1 = values[i - 1], values[i]
        with np.errstate(divide="ignore", invalid="ignore"):
            between = levels[i - 1] + (levels[i] - levels[i - 1]) * (s - x0) / (x1 - x0)
        tied = (levels[np.clip(lo, 0, n - 1)] + levels[np.clip(hi - 1, 0, n - 1)]) * 0.5
        out = np.where(lo < hi, tied, between)
        out = np.where(hi == 0, 0.0, out)
        return np.where((hi == n) & (lo == n), 1.0, out)

    def scores_at(self, quantiles: np.ndarray) -> np.ndarray:
        """:meth:`score_at` of every quantile in an array."""
        return np.interp(np.asarray(quantiles, dtype=np.float64), self.levels, self.values)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Quantiles) and self._levels == other._levels
                and self._values == other._values)

    def __hash__(self) -> int:
        return hash((tuple(self._levels), tuple(self._values)))

    def __repr__(self) -> str:
        return f"Quantiles({len(self._levels)} levels, {self._values[0]:g}..{self._values[-1]:g})"


def map_score(score: float, source: Quantiles, target: Quantiles) -> float:
    """``score`` of the model of ``source`` put on the scale of the model of ``target``:
    the target's score at the source's quantile of it."""
    return target.score_at(source.quantile_of(score))


def distance(a: np.ndarray, b: np.ndarray,
             levels: Sequence[float] = DEFAULT_LEVELS[1:-1]) -> float:
    """Mean absolute difference between the quantile functions of samples ``a`` and ``b``
    at ``levels`` (the 1-Wasserstein distance, on the levels' grid). For quantile-mapped
    scores it lies in [0, 1]: 0 for the same distribution. NaN when either is empty."""
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    return float(np.mean(np.abs(np.quantile(a, levels) - np.quantile(b, levels))))
