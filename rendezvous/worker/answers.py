"""A model's prediction as the :class:`~rendezvous.messages.Score` records of its answers.

One set of rules for the worker (``rendezvous.worker.runner.Scorer``) and the embedded
rendezvous (``rendezvous.embedded``): a classifier's probability outside [0, 1] or any
non-finite value is an ``error`` answer, said at once rather than at the deadline; a model
that raised, or returned a prediction of the wrong length, gives every row an ``error``
with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any, Protocol

from rendezvous.messages import SCHEMA_VERSION, FeatureSchema, Score

if TYPE_CHECKING:
    from rendezvous.model.runtime import Prediction


class RowModel(Protocol):
    """What scoring uses of a model: :class:`rendezvous.model.Model` is one (a test, or an
    embedded application, may pass its own, e.g. one that is slow or raises)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def task(self) -> str:
        """``binary``, ``multiclass`` or ``regression``."""
        ...

    @property
    def schema(self) -> FeatureSchema: ...

    def predict(self, rows: Any) -> Prediction: ...

    def probabilities_by_class(self, row: Any) -> dict[str, float]: ...


def answers(model: RowModel, keys: Sequence[str], prediction: Prediction, received_ms: float,
            scored_ms: float, shadow: bool = False) -> list[Score]:
    """One score per row of ``prediction``, in ``keys`` order (``shadow``: of a version
    that is only recorded, never chosen)."""
    name, version = model.name, model.version
    labels = prediction.labels or repeat(None)
    probabilities = (repeat(None) if prediction.probabilities is None
                     else map(model.probabilities_by_class, prediction.probabilities))
    low, high = (0.0, 1.0) if model.task != "regression" else (-math.inf, math.inf)
    out = []
    for key, score, label, by_class in zip(keys, prediction.scores.tolist(), labels,
                                           probabilities, strict=False):
        if low <= score <= high and score - score == 0.0:  # finite, in range
            # Every field by position: measurably cheaper than keywords, per row.
            out.append(Score(key, name, version, "ok", score, label, received_ms, scored_ms,
                             None, SCHEMA_VERSION, shadow, by_class))
        else:
            out.append(Score(key, name, version, "error", received_ms=received_ms,
                             scored_ms=scored_ms,
                             reason=f"model returned a bad score ({score})", shadow=shadow))
    if len(out) != len(keys):
        # A prediction of the wrong length: no row can be trusted to be its own.
        return failures(model, keys, received_ms, scored_ms,
                        f"model returned {len(out)} results for {len(keys)} rows", shadow)
    return out


def failures(model: RowModel, keys: Sequence[str], received_ms: float, scored_ms: float,
             reason: str, shadow: bool = False) -> list[Score]:
    """An ``error`` answer of ``model`` for each of ``keys``, saying ``reason``."""
    return [Score(key, model.name, model.version, "error", received_ms=received_ms,
                  scored_ms=scored_ms, reason=reason, shadow=shadow) for key in keys]
