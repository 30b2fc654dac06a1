"""The reference statistics a manifest carries, computed from rows: per-feature
distributions (numbers: quantiles, mean, std; strings: category shares) and the score's
101-level quantile table. Shared by the project's training code
(:mod:`rendezvous.model.training`) and ``model import`` (:mod:`rendezvous.model.importer`),
so a bundled and an imported model describe their data the same way.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from rendezvous.model.manifest import (
    OTHER_CATEGORY,
    QUANTILE_LEVELS,
    Distribution,
    QuantileTable,
)
from rendezvous.model.quantiles import Quantiles

TOP_CATEGORIES = 50
"""A string feature's reference keeps the shares of its this many most frequent categories;
the rest are summed under the reserved key ``OTHER_CATEGORY`` (``<other>``), present only
when there are more."""


def round6(value: float) -> float:
    """Six significant digits: enough for bin edges, short enough to read."""
    return float(f"{value:.6g}")


def score_table(scores: np.ndarray) -> QuantileTable:
    """The score's quantile function at 101 levels: serve maps scores between models by it."""
    quantiles = Quantiles.from_scores(scores)
    return QuantileTable(levels=quantiles.levels.tolist(), values=quantiles.values.tolist())


def distribution(values: np.ndarray) -> Distribution:
    """Quantiles at ``QUANTILE_LEVELS``, mean and (population) std of one numeric column."""
    column = values.astype(np.float64)
    return Distribution(
        quantiles=[round6(q) for q in np.quantile(column, QUANTILE_LEVELS)],
        mean=round6(column.mean()),
        std=round6(column.std()),
    )


def category_counts(values: np.ndarray) -> list[tuple[str, int]]:
    """Each category of a string column with its count, most frequent first (ties by name)."""
    return sorted(Counter(values.tolist()).items(), key=lambda kv: (-kv[1], kv[0]))


def category_distribution(values: np.ndarray) -> Distribution:
    """The share of each of the :data:`TOP_CATEGORIES` most frequent categories of a string
    column, most frequent first, and of all the others together under ``OTHER_CATEGORY``."""
    counts = category_counts(values)
    total = max(len(values), 1)
    shares = {str(c): round6(n / total) for c, n in counts[:TOP_CATEGORIES]}
    rest = sum(n for _, n in counts[TOP_CATEGORIES:])
    if rest:
        shares[OTHER_CATEGORY] = round6(rest / total)
    return Distribution(categories=shares)
