"""The manifest beside every model artifact (``model.yaml``), typed and validated.

The manifest says what the artifact is (name, version, sha256 of
``model.onnx``), what it takes (feature names and dtypes, in order), what it
returns, how well it did on held-out rows, and what its training inputs looked
like (quantiles, mean, std), which the monitor uses as the drift reference.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import yaml

from rendezvous.model.errors import ArtifactError
from rendezvous.model.quantiles import Quantiles

MANIFEST_FILE = "model.yaml"
MODEL_FILE = "model.onnx"
QUANTILE_LEVELS = [round(i / 10, 1) for i in range(11)]
"""Quantile levels of the training reference: 0, 0.1, ..., 1.0."""


class Feature(msgspec.Struct, frozen=True):
    """One model input column."""

    name: str
    dtype: str = "float32"


class Distribution(msgspec.Struct, frozen=True):
    """A distribution summary over training rows; ``quantiles`` are at ``Reference.levels``."""

    quantiles: list[float]
    mean: float | None = None
    std: float | None = None


class QuantileTable(msgspec.Struct, frozen=True):
    """A quantile function as stored: ``values[i]`` is the score at quantile ``levels[i]``
    (:class:`rendezvous.model.quantiles.Quantiles` computes with it)."""

    levels: list[float]
    values: list[float]


class Reference(msgspec.Struct, frozen=True):
    """The training-time distributions of every feature and of the score (for PSI drift)."""

    levels: list[float]
    rows: int
    features: dict[str, Distribution]
    score: Distribution
    score_quantiles: QuantileTable | None = None
    """The score's quantile function on the training rows at 101 levels (0, 0.01, ..., 1):
    what ``serve`` maps another model's score onto this model's scale with."""


class Metrics(msgspec.Struct, frozen=True):
    """Quality on the held-out rows, measured on the exported artifact."""

    auc: float
    accuracy: float
    rows: int


class TrainingData(msgspec.Struct, frozen=True):
    """What a version retrained from production traffic learned from (``model train``)."""

    source: str
    """Where the rows came from, e.g. ``archive+feedback``."""
    first_ms: float
    """Record time of the earliest training row, epoch ms."""
    last_ms: float
    """Record time of the latest training row, epoch ms."""
    rows: int
    """Labelled rows, training and held out."""
    train_rows: int
    held_out_rows: int


class Manifest(msgspec.Struct, frozen=True):
    """Everything known about one model version; read from and written to ``model.yaml``."""

    name: str
    version: str
    sha256: str
    """Hex sha256 of ``model.onnx``; loading refuses an artifact that does not match."""
    features: list[Feature]
    output: str
    metrics: Metrics
    reference: Reference
    estimator: str = ""
    """What was trained, e.g. the scikit-learn estimator's repr."""
    trained_with: dict[str, str] = {}
    """Library versions used to train and export, for reproducing the artifact."""
    training: TrainingData | None = None
    """The data window of a version retrained from archived traffic (None: bundled data)."""

    @property
    def feature_names(self) -> list[str]:
        """Feature names in the order the model takes them."""
        return [f.name for f in self.features]


def score_quantiles(manifest: Manifest) -> Quantiles | None:
    """The reference quantile function of the manifest's score, when it has one."""
    table = manifest.reference.score_quantiles
    return Quantiles(table.levels, table.values) if table is not None else None


def manifest_to_yaml(manifest: Manifest) -> str:
    """The manifest as YAML text, fields in declaration order."""
    fields = msgspec.to_builtins(manifest)
    if fields.get("training") is None:
        fields.pop("training", None)
    return yaml.safe_dump(fields, sort_keys=False, width=100)


def write_manifest(manifest: Manifest, directory: Path) -> Path:
    """Write ``directory/model.yaml`` and return its path."""
    path = directory / MANIFEST_FILE
    path.write_text(manifest_to_yaml(manifest))
    return path


def load_manifest(directory: Path) -> Manifest:
    """Read and validate ``directory/model.yaml``; :class:`ArtifactError` names the file if bad."""
    path = Path(directory) / MANIFEST_FILE
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(
            f"model manifest {path} is missing; re-run `python models/train.py` "
            "or point at a directory models/<name>/<version>"
        ) from None
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"model manifest {path} is unreadable: {exc}") from exc
    try:
        return msgspec.convert(raw, Manifest)
    except msgspec.ValidationError as exc:
        raise ArtifactError(f"model manifest {path} is invalid: {exc}") from exc
