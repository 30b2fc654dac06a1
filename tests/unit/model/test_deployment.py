"""The models of one deployment must take the same features: serve and up refuse otherwise."""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec
import pytest

from rendezvous.messages import MAX_SCORE_BYTES, max_score_bytes
from rendezvous.model import load_manifest
from rendezvous.model.deployment import FeaturesDisagree, feature_difference, load_deployment
from rendezvous.model.manifest import Feature, write_manifest

MODELS = Path(__file__).resolve().parents[3] / "models"


def _copy_models(tmp_path: Path) -> Path:
    out = tmp_path / "models"
    shutil.copytree(MODELS, out, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return out


def _rewrite(directory: Path, **changes: object) -> None:
    write_manifest(msgspec.structs.replace(load_manifest(directory), **changes), directory)


def test_the_bundled_models_agree(tmp_path: Path) -> None:
    deployment = load_deployment(_copy_models(tmp_path), "primary")
    assert deployment.schema == load_manifest(MODELS / "primary" / "1").schema
    assert deployment.max_score_bytes == max_score_bytes([0, 1])


def test_a_canary_with_other_features_is_refused_by_name(tmp_path: Path) -> None:
    models = _copy_models(tmp_path)
    canary = load_manifest(models / "canary" / "1")
    renamed = [Feature("area", "float32"), *canary.features[1:]]
    _rewrite(models / "canary" / "1", features=renamed)
    with pytest.raises(FeaturesDisagree, match=r"canary/1 lacks \['mean_radius'\]"):
        load_deployment(models, "primary")


def test_a_feature_of_another_type_is_named() -> None:
    primary = load_manifest(MODELS / "primary" / "1")
    typed = [Feature("mean_radius", "string", ["a"]), *primary.features[1:]]
    other = msgspec.structs.replace(primary, name="canary", features=typed)
    assert feature_difference(primary, other) == (
        "types differ: mean_radius (float32 vs string)")
    assert feature_difference(primary, primary) is None


def test_the_score_size_bound_grows_with_the_classes(tmp_path: Path) -> None:
    models = _copy_models(tmp_path)
    classes = [f"class-{i}" for i in range(200)]
    _rewrite(models / "canary" / "1", task="multiclass", classes=classes)
    bound = load_deployment(models, "primary").max_score_bytes
    assert bound == max_score_bytes(classes) > MAX_SCORE_BYTES + 200 * 32
