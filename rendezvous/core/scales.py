"""Score scales: each model version's quantile function, and maps onto the preferred model's.

Two models put the same inputs on different scales (the bundled primary says
0 or 1, the canary anything in between), so a threshold on ``score`` means
something else whenever the fallback answered. A :class:`ScaleMap` puts a
score of one model version on another's scale by quantiles (score -> its
quantile under its own model -> the target model's score at that quantile):
two binary searches over precomputed tables, no allocation.
"""

from __future__ import annotations

from collections.abc import Mapping

from rendezvous.model.quantiles import Quantiles


class ScaleMap:
    """Maps scores of one model version onto a target model version's scale."""

    __slots__ = ("label", "source", "target")

    def __init__(self, source: Quantiles, target: Quantiles, label: str) -> None:
        self.source, self.target = source, target
        self.label = label
        """What the decision records: ``<source>:<model>/<version>-><target>/<version>``."""

    def __call__(self, score: float) -> float:
        return self.target.score_at(self.source.quantile_of(score))


class Scales:
    """Quantile functions by model name and version, all from one ``source`` (``reference``:
    the manifests' training reference).

    ``current`` names the version of each model whose scale is the target when that
    model is the preferred one (default: the highest version known).
    """

    def __init__(self, tables: Mapping[str, Mapping[str, Quantiles]], source: str = "reference",
                 current: Mapping[str, str] | None = None) -> None:
        self.tables = {model: dict(versions) for model, versions in tables.items() if versions}
        self.source = source
        self.current = dict(current) if current is not None else {
            model: max(versions, key=_version_key) for model, versions in self.tables.items()}

    def towards(self, target: str) -> dict[str, dict[str, ScaleMap]]:
        """Per other model and version, the map of its scores onto ``target``'s scale
        (empty when ``target`` has no quantile function)."""
        version = self.current.get(target)
        quantiles = self.tables.get(target, {}).get(version or "")
        if version is None or quantiles is None:
            return {}
        return {
            model: {v: ScaleMap(q, quantiles, f"{self.source}:{model}/{v}->{target}/{version}")
                    for v, q in versions.items()}
            for model, versions in self.tables.items() if model != target
        }


def _version_key(version: str) -> tuple[int, ...] | tuple[()]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return ()
