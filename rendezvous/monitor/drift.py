"""Input drift against a model manifest's training reference (PSI per feature)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from rendezvous.model.manifest import Manifest, load_manifest
from rendezvous.model.runtime import resolve_model
from rendezvous.monitor import stats
from rendezvous.monitor.windows import DriftWindow


@dataclass(frozen=True)
class FeatureReference:
    """One feature's PSI bins: edges, expected proportions, and the training mean/std."""

    edges: list[float]
    expected: list[float]
    mean: float | None
    std: float | None


@dataclass(frozen=True)
class DriftReference:
    """Every feature's reference, in the model's feature order."""

    model: str
    version: str
    names: list[str]
    features: dict[str, FeatureReference]

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> DriftReference:
        ref = manifest.reference
        features = {}
        for name in manifest.feature_names:
            dist = ref.features[name]
            edges, expected = stats.psi_bins(dist.quantiles, ref.levels)
            features[name] = FeatureReference(edges, expected, dist.mean, dist.std)
        return cls(manifest.name, manifest.version, manifest.feature_names, features)

    @classmethod
    def load(cls, models_dir: Path, model: str, version: str | None = None) -> DriftReference:
        """The reference of ``models_dir/<model>/<version or newest>/model.yaml``."""
        return cls.from_manifest(load_manifest(resolve_model(models_dir, model, version)))

    @cached_property
    def _binning(self) -> list[tuple[str, list[float], int]]:
        """(name, edges, bin count) per feature in order: what :meth:`observe` needs of
        each, looked up once (it runs for every input)."""
        return [(n, self.features[n].edges, len(self.features[n].expected)) for n in self.names]

    def observe(self, window: DriftWindow, row: list[float]) -> None:
        """Count one input row (values in :attr:`names` order) into ``window``."""
        window.inputs += 1
        bins = window.bins
        for (name, edges, n_bins), value in zip(self._binning, row, strict=True):
            counts = bins.get(name)
            if counts is None:
                counts = bins[name] = [0] * n_bins
            counts[stats.bin_index(edges, value)] += 1

    def psi(self, window: DriftWindow) -> dict[str, float]:
        """PSI of every feature seen in ``window`` (NaN for a feature with no values)."""
        out = {}
        for name in self.names:
            counts = window.bins.get(name)
            out[name] = stats.psi(self.features[name].expected, counts) if counts else math.nan
        return out
