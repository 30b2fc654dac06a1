"""Input drift against a model manifest's training reference (PSI per feature).

A number is binned by the reference's quantiles (:func:`stats.psi_bins`). A string is
binned by category: one bin per category the reference lists (``Distribution.categories``,
each with its training share), one for the rest (the reference's :data:`OTHER_CATEGORY`
share: a category the model saw in training, ``Feature.categories``, but the reference
does not list on its own) and, last, one for a category the manifest never saw, whose
expected share is 0: PSI rises with it, and the window reports how many inputs had one
(``unseen``) and the first few of them.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Any

from rendezvous.messages import FeatureSchema, FeatureValue, Label
from rendezvous.model.manifest import (
    OTHER_CATEGORY,
    Distribution,
    Feature,
    Manifest,
    Task,
    load_manifest,
)
from rendezvous.model.runtime import resolve_model
from rendezvous.monitor import stats
from rendezvous.monitor.windows import DriftWindow

UNSEEN_EXAMPLES = 5
"""How many distinct unseen categories a window keeps per feature, to show which they are."""
UNSEEN_EXAMPLE_CHARS = 64
"""Each kept at most this long (a category is the sender's text)."""


@dataclass(frozen=True)
class FeatureReference:
    """One feature's PSI bins: expected proportions and, for a number, the bin edges and
    the training mean/std; for a string, the bin of each known category (``categories``:
    the listed ones, then the rest's bin; a category not in it goes to the last bin)."""

    edges: list[float]
    expected: list[float]
    mean: float | None = None
    std: float | None = None
    categories: dict[str, int] | None = None

    @property
    def is_string(self) -> bool:
        return self.categories is not None

    @property
    def unseen_bin(self) -> int:
        """The bin of a category the manifest never saw (-1: a number has none)."""
        return len(self.expected) - 1 if self.categories is not None else -1

    def locator(self) -> Callable[[Any], int]:
        """value -> its bin."""
        categories = self.categories
        if categories is None:
            return partial(bisect.bisect_right, self.edges)
        unseen = self.unseen_bin
        return lambda value: categories.get(value, unseen)

    @classmethod
    def numeric(cls, dist: Distribution, levels: list[float]) -> FeatureReference:
        edges, expected = stats.psi_bins(dist.quantiles, levels)
        return cls(edges, expected, dist.mean, dist.std)

    @classmethod
    def categorical(cls, dist: Distribution, feature: Feature) -> FeatureReference:
        """Bins: each listed category, the rest (:data:`OTHER_CATEGORY`), the unseen."""
        shares = dict(dist.categories or {})
        rest = shares.pop(OTHER_CATEGORY, None)
        listed = list(shares)
        if rest is None:  # no share for the rest given: what the listed ones leave
            rest = max(0.0, 1.0 - sum(shares.values()))
        index = {category: i for i, category in enumerate(listed)}
        rest_bin = len(listed)
        for category in feature.categories or ():
            index.setdefault(category, rest_bin)  # seen in training, not listed: the rest
        return cls([], [*shares.values(), rest, 0.0], categories=index)


@dataclass(frozen=True)
class DriftReference:
    """Every feature's reference, in the model's feature order (a feature whose manifest
    gives no usable reference, e.g. fewer than two quantiles, is not binned: PSI NaN)."""

    model: str
    version: str
    names: list[str]
    features: dict[str, FeatureReference]
    schema: FeatureSchema = field(default_factory=lambda: FeatureSchema([]))
    """The features' names and types as events carry them (``Manifest.schema``)."""
    task: Task = "binary"
    classes: list[Label] = field(default_factory=lambda: [0, 1])

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> DriftReference:
        ref = manifest.reference
        features = {}
        for feature in manifest.features:
            dist = ref.features.get(feature.name)
            if dist is None:
                continue
            if feature.is_string:
                if dist.categories:
                    features[feature.name] = FeatureReference.categorical(dist, feature)
            elif len(dist.quantiles) >= 2:
                features[feature.name] = FeatureReference.numeric(dist, ref.levels)
        return cls(manifest.name, manifest.version, manifest.feature_names, features,
                   manifest.schema, manifest.task, list(manifest.classes))

    @classmethod
    def load(cls, models_dir: Path, model: str, version: str | None = None) -> DriftReference:
        """The reference of ``models_dir/<model>/<version or newest>/model.yaml``."""
        return cls.from_manifest(load_manifest(resolve_model(models_dir, model, version)))

    @cached_property
    def _binning(self) -> list[tuple[str, int, Callable[[Any], int], int, int]]:
        """(name, position in the row, value -> bin, bin count, unseen bin or -1) per binned
        feature: what :meth:`observe` needs of each, looked up once (it runs per input)."""
        out = []
        for position, name in enumerate(self.names):
            ref = self.features.get(name)
            if ref is not None:
                out.append((name, position, ref.locator(), len(ref.expected), ref.unseen_bin))
        return out

    def observe(self, window: DriftWindow, row: list[FeatureValue]) -> None:
        """Count one input row (values in :attr:`names` order, of their features' types:
        :func:`~rendezvous.messages.feature_row` with :attr:`schema`) into ``window``."""
        window.inputs += 1
        bins = window.bins
        for name, position, locate, n_bins, unseen in self._binning:
            counts = bins.get(name)
            if counts is None:
                counts = bins[name] = [0] * n_bins
            value = row[position]
            b = locate(value)
            counts[b] += 1
            if b == unseen:
                _remember_unseen(window, name, str(value))

    def fit(self, window: DriftWindow) -> None:
        """Drop the counts of a restored ``window`` that were binned by another reference (a
        manifest replaced between two runs): counting into them would misplace values."""
        for name, counts in list(window.bins.items()):
            ref = self.features.get(name)
            if ref is None or len(counts) != len(ref.expected):
                del window.bins[name]
                window.unseen_examples.pop(name, None)

    def psi(self, window: DriftWindow) -> dict[str, float]:
        """PSI of every feature (NaN for a feature with no values or no reference)."""
        out = {}
        for name in self.names:
            counts = window.bins.get(name)
            ref = self.features.get(name)
            out[name] = stats.psi(ref.expected, counts) if counts and ref else math.nan
        return out

    def unseen(self, window: DriftWindow) -> dict[str, int]:
        """Per string feature: the window's inputs whose category the manifest never saw."""
        out = {}
        for name in self.names:
            ref = self.features.get(name)
            if ref is not None and ref.is_string:
                counts = window.bins.get(name)
                out[name] = counts[ref.unseen_bin] if counts else 0
        return out


def _remember_unseen(window: DriftWindow, name: str, value: str) -> None:
    examples = window.unseen_examples.setdefault(name, [])
    value = value[:UNSEEN_EXAMPLE_CHARS]
    if len(examples) < UNSEEN_EXAMPLES and value not in examples:
        examples.append(value)
