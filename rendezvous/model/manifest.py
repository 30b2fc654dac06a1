"""The manifest beside every model artifact (``model.yaml``), typed and validated.

The manifest says what the artifact is (name, version, sha256 of
``model.onnx``), what it takes (feature names and dtypes, in order), what task it
does and which graph output holds what, how well it did on held-out rows, and what
its training inputs looked like (quantiles, mean and std of numbers, category
frequencies of strings), which the monitor uses as the drift reference. ``model
import`` writes one for any ONNX graph; ``models/train.py`` for the bundled models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import msgspec
import yaml

from rendezvous.messages import FeatureSchema, Label
from rendezvous.model.errors import ArtifactError
from rendezvous.model.quantiles import Quantiles

MANIFEST_FILE = "model.yaml"
MODEL_FILE = "model.onnx"
QUANTILE_LEVELS = [round(i / 10, 1) for i in range(11)]
"""Quantile levels of the training reference: 0, 0.1, ..., 1.0."""


Task = Literal["binary", "multiclass", "regression"]
DType = Literal["float32", "float64", "int64", "string"]
OTHER_CATEGORY = "<other>"
"""A string feature's reference key for the categories not listed on their own (the rest)."""


class Feature(msgspec.Struct, frozen=True, omit_defaults=True):
    """One model input column: its name, its type (numbers: ``float32``, ``float64``,
    ``int64``; text: ``string``) and, for a string, the categories seen in the data."""

    name: str
    dtype: DType = "float32"
    categories: list[str] | None = None

    @property
    def is_string(self) -> bool:
        return self.dtype == "string"


class Signature(msgspec.Struct, frozen=True):
    """How the ONNX graph is fed and read: found by ``model import`` from the graph's shapes
    and types (never assumed from names), checked again at every load.

    ``layout`` ``matrix``: one 2-D numeric input ``[N, F]`` (``inputs`` has its name);
    ``columns``: one input per feature, in feature order. Outputs: ``probabilities``
    (a tensor ``[N, K]`` or a ZipMap sequence of maps), ``label`` (a tensor ``[N]``),
    ``value`` (a number per row: a regression's value, or a single-output graph's
    probability of the positive class)."""

    layout: Literal["matrix", "columns"]
    inputs: list[str]
    probabilities: str | None = None
    label: str | None = None
    value: str | None = None


class Distribution(msgspec.Struct, frozen=True, omit_defaults=True):
    """A distribution summary over training rows. Numbers: ``quantiles`` at
    ``Reference.levels``, mean and std; strings: ``categories``, each category's share."""

    quantiles: list[float] = []
    mean: float | None = None
    std: float | None = None
    categories: dict[str, float] | None = None


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
    """Quality on the held-out rows, measured on the exported artifact; which are set
    depends on the task (binary: AUC, accuracy; multiclass: accuracy, log loss;
    regression: RMSE, MAE, R²)."""

    rows: int
    auc: float | None = None
    accuracy: float | None = None
    log_loss: float | None = None
    rmse: float | None = None
    mae: float | None = None
    r2: float | None = None

    def summary(self) -> str:
        """The set metrics in one line, e.g. ``AUC 0.9714, accuracy 0.9441 (143 rows)``."""
        names = {"auc": "AUC", "accuracy": "accuracy", "log_loss": "log loss",
                 "rmse": "RMSE", "mae": "MAE", "r2": "R²"}
        shown = [f"{label} {getattr(self, key):.4f}" for key, label in names.items()
                 if getattr(self, key) is not None]
        return f"{', '.join(shown) or 'no metrics'} ({self.rows} held-out rows)"


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
    """What the score means, in words."""
    metrics: Metrics | None
    """Held-out quality; None for a model imported without labelled data."""
    reference: Reference
    estimator: str = ""
    """What was trained, e.g. the scikit-learn estimator's repr."""
    trained_with: dict[str, str] = {}
    """Library versions used to train and export, for reproducing the artifact."""
    training: TrainingData | None = None
    """The data window of a version retrained from archived traffic (None: bundled data)."""
    task: Task = "binary"
    classes: list[Label] = msgspec.field(default_factory=lambda: [0, 1])
    """Class labels as the model has them (classifiers; binary: negative, positive);
    empty for regression."""
    signature: Signature | None = None
    """How the graph is fed and read; None: the bundled layout (one ``input`` matrix,
    tensors ``label`` and ``probabilities``)."""
    origin: Literal["trained", "imported"] = "trained"
    """``trained`` by this project (``model train`` can retrain it) or ``imported``."""

    @property
    def feature_names(self) -> list[str]:
        """Feature names in the order the model takes them."""
        return [f.name for f in self.features]

    @property
    def schema(self) -> FeatureSchema:
        """The features as events must carry them (names, which are strings or integers)."""
        return FeatureSchema(self.feature_names,
                             strings=[f.name for f in self.features if f.dtype == "string"],
                             integers=[f.name for f in self.features if f.dtype == "int64"])

    @property
    def is_classifier(self) -> bool:
        return self.task != "regression"


def score_quantiles(manifest: Manifest) -> Quantiles | None:
    """The reference quantile function of the manifest's score, when it has one."""
    table = manifest.reference.score_quantiles
    return Quantiles(table.levels, table.values) if table is not None else None


def manifest_to_yaml(manifest: Manifest) -> str:
    """The manifest as YAML text, fields in declaration order."""
    fields = msgspec.to_builtins(manifest)
    for optional in ("training", "signature"):
        if fields.get(optional) is None:
            fields.pop(optional, None)
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
