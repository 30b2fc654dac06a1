"""A score's quantile function: built from scores, it maps a score to its quantile (a level
in [0, 1]) and a quantile back to a score. Pure numpy.

Two models' raw scores are on different scales (a boosted model's probabilities crowd
0 and 1, a logistic regression's spread out), so comparing them raw says more about
calibration than about the models. Mapping each model's score through the quantile
function of *its own* reference scores (the training-time quantiles in its manifest)
puts both on one scale, [0, 1], where "the top 10 % of this model's scores" means the
same for both. The backtest compares candidates on that scale; serve can map a
fallback model's score onto the preferred model's scale with :func:`map_score`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rendezvous.model.manifest import Manifest

LEVELS = tuple(round(i / 100, 2) for i in range(101))
"""Default levels of a quantile function built from scores: 0, 0.01, ..., 1."""


class QuantileFunction:
    """Quantiles ``values`` of a score at ``levels`` (both increasing / non-decreasing),
    linearly interpolated in between and clipped to [levels[0], levels[-1]] outside."""

    __slots__ = ("_knots", "_levels_at_knots", "levels", "values")

    def __init__(self, levels: Sequence[float] | np.ndarray,
                 values: Sequence[float] | np.ndarray) -> None:
        lv = np.asarray(levels, dtype=np.float64)
        qv = np.asarray(values, dtype=np.float64)
        if lv.ndim != 1 or lv.shape != qv.shape or len(lv) < 2:
            raise ValueError("a quantile function needs >= 2 levels and as many values")
        if not (np.all(np.diff(lv) > 0) and np.all(np.diff(qv) >= 0)):
            raise ValueError("levels must increase and values must not decrease")
        if not (np.all(np.isfinite(qv)) and lv[0] >= 0.0 and lv[-1] <= 1.0):
            raise ValueError("levels must lie in [0, 1] and values be finite")
        self.levels, self.values = lv, qv
        # A score repeated at several levels (scores piled up at 0 or 1) maps to the middle
        # of those levels: the inverse of a flat stretch is its midpoint.
        knots, inverse = np.unique(qv, return_inverse=True)
        self._knots = knots
        self._levels_at_knots = np.bincount(inverse, weights=lv) / np.bincount(inverse)

    @classmethod
    def from_scores(cls, scores: np.ndarray | Sequence[float],
                    levels: Sequence[float] = LEVELS) -> QuantileFunction:
        """The empirical quantile function of ``scores`` (finite ones) at ``levels``."""
        finite = np.asarray(scores, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if len(finite) == 0:
            raise ValueError("no finite score to build a quantile function from")
        return cls(levels, np.quantile(finite, levels))

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> QuantileFunction:
        """The reference quantile function of a model's score (its training-time quantiles)."""
        return cls(manifest.reference.levels, manifest.reference.score.quantiles)

    def quantile_of(self, scores: np.ndarray | Sequence[float] | float) -> np.ndarray:
        """Each score's level in [0, 1] (score -> quantile)."""
        x = np.asarray(scores, dtype=np.float64)
        if len(self._knots) == 1:  # a constant score: every score is its middle
            return np.full(x.shape, float(self._levels_at_knots[0]))
        return np.interp(x, self._knots, self._levels_at_knots)

    def score_at(self, levels: np.ndarray | Sequence[float] | float) -> np.ndarray:
        """The score at each level (quantile -> score)."""
        return np.interp(np.asarray(levels, dtype=np.float64), self.levels, self.values)

    def to_list(self) -> dict[str, list[float]]:
        """``{"levels": [...], "values": [...]}`` for a manifest or a report."""
        return {"levels": self.levels.tolist(), "values": self.values.tolist()}


def map_score(score: np.ndarray | float, source: QuantileFunction,
              target: QuantileFunction) -> np.ndarray:
    """``score`` of the source model expressed on the target model's scale: the target's
    score at the source score's quantile."""
    return target.score_at(source.quantile_of(score))


def distance(a: np.ndarray, b: np.ndarray, levels: Sequence[float] = LEVELS[1:-1]) -> float:
    """Mean absolute difference between the quantile functions of samples ``a`` and ``b``
    at ``levels`` (the 1-Wasserstein distance, on the levels' grid). For quantile-mapped
    scores it lies in [0, 1]: 0 for the same distribution. NaN when either is empty."""
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    return float(np.mean(np.abs(np.quantile(a, levels) - np.quantile(b, levels))))
