"""Model artifacts: manifests, verified loading, and ONNX Runtime inference."""

from rendezvous.model.dataset import Dataset, Split, load_dataset, sample_events, split
from rendezvous.model.errors import ArtifactError, InputShapeError, ModelError
from rendezvous.model.manifest import Manifest, load_manifest
from rendezvous.model.quantiles import Quantiles
from rendezvous.model.runtime import (
    Model,
    Prediction,
    list_models,
    list_versions,
    load_model,
    reference_quantiles,
    resolve_model,
)

__all__ = [
    "ArtifactError",
    "Dataset",
    "InputShapeError",
    "Manifest",
    "Model",
    "Prediction",
    "ModelError",
    "Quantiles",
    "Split",
    "list_models",
    "list_versions",
    "load_dataset",
    "load_manifest",
    "load_model",
    "reference_quantiles",
    "resolve_model",
    "sample_events",
    "split",
]
