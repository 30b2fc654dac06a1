"""The models of one deployment, seen together: they must take the same features.

A request fans out to every model, so the primary and the canary (and every other
model in the models directory) must read the same features with the same types;
``serve`` and ``up`` refuse to start otherwise, naming the difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rendezvous.messages import FeatureSchema, max_score_bytes
from rendezvous.model.errors import ModelError
from rendezvous.model.manifest import Manifest, load_manifest
from rendezvous.model.runtime import list_models, list_versions, resolve_model


class FeaturesDisagree(ModelError):
    """Two models of one deployment take different features."""


@dataclass(frozen=True)
class Deployment:
    """What ``serve`` needs to know of the models: the features every request must carry,
    and how large a score record may be (it grows with a multiclass model's classes)."""

    schema: FeatureSchema
    max_score_bytes: int


def feature_difference(a: Manifest, b: Manifest) -> str | None:
    """How ``b``'s features differ from ``a``'s, in words; None when they are the same."""
    left = {f.name: f.dtype for f in a.features}
    right = {f.name: f.dtype for f in b.features}
    parts = []
    if missing := [n for n in left if n not in right]:
        parts.append(f"{b.name}/{b.version} lacks {missing[:5]}")
    if extra := [n for n in right if n not in left]:
        parts.append(f"{b.name}/{b.version} has {extra[:5]} that {a.name}/{a.version} lacks")
    if typed := [f"{n} ({left[n]} vs {right[n]})" for n in left
                 if n in right and _kind(left[n]) != _kind(right[n])]:
        parts.append(f"types differ: {', '.join(typed[:5])}")
    if not parts and a.feature_names != b.feature_names and a.signature is None:
        parts.append("the order differs")
    return "; ".join(parts) or None


def _kind(dtype: str) -> str:
    return "string" if dtype == "string" else "number"


def newest_manifests(models_dir: Path) -> list[Manifest]:
    """The newest version's manifest of every model under ``models_dir``."""
    return [load_manifest(resolve_model(models_dir, name)) for name in list_models(models_dir)]


def load_deployment(models_dir: Path, features_from: str) -> Deployment:
    """The schema of ``features_from`` (its newest version), checked against every other
    model's newest version; :class:`FeaturesDisagree` names the first difference."""
    reference = load_manifest(resolve_model(models_dir, features_from))
    for other in newest_manifests(models_dir):
        if other.name == reference.name:
            continue
        difference = feature_difference(reference, other)
        if difference is not None:
            raise FeaturesDisagree(
                f"the models in {models_dir} must take the same features, but {difference}: "
                f"import them with the same feature columns (or keep only one deployment's "
                f"models in that directory)")
    bound = max_score_bytes(reference.classes)
    for name in list_models(models_dir):  # any version may be promoted: the largest bound
        for version in list_versions(models_dir, name):
            try:
                manifest = load_manifest(Path(models_dir) / name / version)
            except ModelError:
                continue
            bound = max(bound, max_score_bytes(manifest.classes))
    return Deployment(reference.schema, bound)
