"""Example rows of any model, drawn from its manifest's training reference.

``up`` warms the pipeline with them and prints them in its kcat and curl examples,
so a user's own model (strings and all) is warmed and shown with rows of its own
features, not the bundled data set's. Numbers are drawn by inverting the reference
quantiles (uniform between two neighbouring deciles), integers rounded; strings by
the reference category shares (the reserved rest-of-categories key is never drawn).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rendezvous.messages import FeatureValue
from rendezvous.model.manifest import OTHER_CATEGORY, Distribution, Feature, Manifest


def example_rows(manifest: Manifest, n: int, seed: int = 0) -> list[dict[str, FeatureValue]]:
    """``n`` rows of the manifest's features, by name, like its training data."""
    rng = np.random.default_rng(seed)
    references = manifest.reference.features
    columns = {f.name: _column(f, references.get(f.name), n, rng) for f in manifest.features}
    return [{name: values[i] for name, values in columns.items()} for i in range(n)]


def example_events(manifest: Manifest, n: int, seed: int = 0, prefix: str = "example",
                   **fields: Any) -> list[dict[str, Any]]:
    """``n`` input events (``id``, named ``features``, and ``fields``) of example rows."""
    return [{"id": f"{prefix}-{i}", "features": row, **fields}
            for i, row in enumerate(example_rows(manifest, n, seed))]


def _column(feature: Feature, reference: Distribution | None, n: int,
            rng: np.random.Generator) -> list[FeatureValue]:
    if feature.is_string:
        shares = dict((reference.categories or {}) if reference else {})
        shares.pop(OTHER_CATEGORY, None)
        if not shares:
            shares = dict.fromkeys(feature.categories or ["unknown"], 1.0)
        names = list(shares)
        p = np.asarray([shares[c] for c in names], dtype=np.float64)
        return [names[i] for i in rng.choice(len(names), size=n, p=p / p.sum())]
    if reference is None or len(reference.quantiles) < 2:
        values = np.zeros(n)
    else:
        quantiles = np.asarray(reference.quantiles, dtype=np.float64)
        levels = np.linspace(0.0, 1.0, len(quantiles))
        values = np.interp(rng.uniform(0.0, 1.0, n), levels, quantiles)
    if feature.dtype == "int64":
        values = np.round(values)
    return [float(v) for v in values]
