"""Find, verify and run a model artifact with ONNX Runtime.

A worker is one core, so each session runs on one thread, sequentially, with
every graph optimisation on. ``Model.predict`` is one ORT ``run`` per call:
batch the rows before calling it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from rendezvous.messages import FeatureValue, Label
from rendezvous.model.errors import ArtifactError, InputShapeError, ModelError
from rendezvous.model.manifest import MODEL_FILE, Manifest, load_manifest, score_quantiles
from rendezvous.model.quantiles import Quantiles
from rendezvous.model.signature import BUNDLED, NUMPY_TYPES, SignatureError, ports, signature_of

log = logging.getLogger(__name__)

RETRAIN_HINT = "re-run `python models/train.py` (or restore the file from git)"


@dataclass(frozen=True)
class Prediction:
    """A batch's results, one per row, per the manifest's task.

    ``scores``: float64 ``[n]`` (binary: P(positive class); multiclass: the predicted
    class's probability; regression: the value). ``labels``: the predicted classes as the
    model has them (None for regression). ``probabilities``: float64 ``[n, K]`` in
    ``Model.classes`` order (multiclass only).
    """

    scores: np.ndarray
    labels: list[Label] | None = None
    probabilities: np.ndarray | None = None


class Model:
    """A verified model version, ready to score rows of its features."""

    def __init__(self, manifest: Manifest, session: ort.InferenceSession, path: Path) -> None:
        self.manifest = manifest
        self.name = manifest.name
        self.version = manifest.version
        self.path = path
        self.task = manifest.task
        self.classes: list[Label] = list(manifest.classes)
        self.feature_names = manifest.feature_names
        self.schema = manifest.schema
        self.n_features = len(self.feature_names)
        self._session = session
        self.signature = signature = manifest.signature or BUNDLED
        self._outputs = [name for name in (signature.label, signature.probabilities,
                                           signature.value) if name is not None]
        inputs = {p.name: p for p in ports(session.get_inputs())}
        self._feeds = [(name, NUMPY_TYPES.get(inputs[name].type, np.float32),
                        inputs[name].rank) for name in signature.inputs]
        self._class_keys = [str(c) for c in self.classes]

    def __repr__(self) -> str:
        return f"Model({self.name!r}, version={self.version!r}, path={str(self.path)!r})"

    def predict(self, rows: np.ndarray | Sequence[Sequence[FeatureValue]]) -> Prediction:
        """Score ``rows``, each the model's features in order: a float array ``[n, F]``
        (every feature a number) or a sequence of rows of numbers and strings."""
        outputs = dict(zip(self._outputs, self._session.run(self._outputs, self.feed(rows)),
                           strict=True))
        return self._read(outputs)

    def feed(self, rows: np.ndarray | Sequence[Sequence[FeatureValue]]) -> dict[str, Any]:
        """ONNX Runtime's input dict for ``rows``; :class:`InputShapeError` when they do not fit."""
        width = self.n_features
        if self.signature.layout == "matrix":
            name, dtype, _ = self._feeds[0]
            try:
                matrix = np.ascontiguousarray(rows, dtype=dtype)
            except (TypeError, ValueError) as exc:
                raise InputShapeError(f"{self.name}/{self.version} takes numbers: {exc}") from None
            if matrix.ndim != 2 or matrix.shape[1] != width:
                raise InputShapeError(
                    f"{self.name}/{self.version} takes rows of {width} features, "
                    f"got an array of shape {matrix.shape}")
            return {name: matrix}
        table = rows if isinstance(rows, np.ndarray) else np.array(rows, dtype=object)
        if table.ndim != 2 or table.shape[1] != width:
            raise InputShapeError(f"{self.name}/{self.version} takes rows of {width} "
                                  f"features, got an array of shape {table.shape}")
        feeds: dict[str, Any] = {}
        for i, (name, dtype, rank) in enumerate(self._feeds):
            column = table[:, i]
            try:
                values = (column.astype(str).astype(object) if dtype is object
                          else column.astype(dtype))
            except (TypeError, ValueError) as exc:
                raise InputShapeError(f"feature {self.feature_names[i]!r}: {exc}") from None
            feeds[name] = values.reshape(-1, 1) if rank == 2 else values
        return feeds

    def _read(self, outputs: dict[str, Any]) -> Prediction:
        signature, task = self.signature, self.task
        if signature.probabilities is not None:
            probabilities = self._probabilities(outputs[signature.probabilities])
            if task == "binary":
                scores = probabilities[:, 1].astype(np.float64)
                labels = (np.asarray(outputs[signature.label]).ravel().tolist()
                          if signature.label is not None else self._labels(scores >= 0.5))
                return Prediction(scores, labels)
            chosen = probabilities.argmax(axis=1)
            scores = probabilities[np.arange(len(chosen)), chosen].astype(np.float64)
            return Prediction(scores, [self.classes[i] for i in chosen.tolist()],
                              probabilities.astype(np.float64))
        assert signature.value is not None  # signature_of guarantees one of the two
        values = np.asarray(outputs[signature.value], dtype=np.float64).reshape(-1)
        if task == "regression":
            return Prediction(values)
        return Prediction(values, self._labels(values >= 0.5))

    def _probabilities(self, output: Any) -> np.ndarray:
        """``[n, K]`` in class order, from a tensor or a ZipMap's list of dicts."""
        if isinstance(output, np.ndarray):
            return output
        classes = self.classes
        return np.array([[row[c] for c in classes] for row in output], dtype=np.float64)

    def _labels(self, positive: np.ndarray) -> list[Label]:
        negative_class, positive_class = self.classes[0], self.classes[1]
        return [positive_class if p else negative_class for p in positive.tolist()]

    def probabilities_by_class(self, row: np.ndarray) -> dict[str, float]:
        """One row of :attr:`Prediction.probabilities` as ``{class: p}`` (JSON keys)."""
        return dict(zip(self._class_keys, row.tolist(), strict=True))


def session_options() -> ort.SessionOptions:
    """One thread, sequential execution, all graph optimisations: one worker per core;
    only errors logged."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Errors only: onnxmltools' graphs declare a label output of shape [1] and ORT would
    # warn on stderr at every batch that it holds N values (the value itself is right).
    options.log_severity_level = 3
    return options


def load_model(path: Path) -> Model:
    """Load ``models/<name>/<version>``: read the manifest, verify the sha256, build the session.

    Raises :class:`ArtifactError` (a :class:`ModelError`) naming the file when
    the manifest or ``model.onnx`` is missing, corrupt, or does not match.
    """
    directory = Path(path)
    manifest = load_manifest(directory)
    onnx_path = directory / MODEL_FILE
    try:
        data = onnx_path.read_bytes()
    except OSError as exc:
        raise ArtifactError(
            f"model file {onnx_path} cannot be read ({exc}); {RETRAIN_HINT}"
        ) from exc
    # Hash the very bytes handed to ORT, so the file cannot change in between.
    digest = hashlib.sha256(data).hexdigest()
    if digest != manifest.sha256:
        raise ArtifactError(
            f"model file {onnx_path} does not match its manifest (sha256 {digest[:12]}..., "
            f"manifest says {manifest.sha256[:12]}...): it is corrupt or was replaced "
            f"without updating model.yaml; {RETRAIN_HINT}"
        )
    try:
        session = ort.InferenceSession(
            data, sess_options=session_options(), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # ORT raises its own untyped exceptions for bad graphs
        raise ArtifactError(
            f"ONNX Runtime cannot load model file {onnx_path}: {exc}; {RETRAIN_HINT}"
        ) from exc
    _check_signature(session, manifest, onnx_path)
    return Model(manifest, session, directory)


def _check_signature(session: ort.InferenceSession, manifest: Manifest, onnx_path: Path) -> None:
    """Refuse a graph whose inputs or outputs disagree with the manifest's signature."""
    wanted = manifest.signature or BUNDLED
    inputs, outputs = ports(session.get_inputs()), ports(session.get_outputs())
    named = {role: name for role in ("probabilities", "label", "value")
             if (name := getattr(wanted, role)) is not None}
    try:
        found = signature_of(inputs, outputs, manifest.feature_names, named)
    except SignatureError as exc:
        raise ArtifactError(f"model file {onnx_path} disagrees with its manifest: {exc}") from None
    problems = []
    if (found.layout, found.inputs) != (wanted.layout, wanted.inputs):
        problems.append(f"inputs {found.inputs} ({found.layout}), manifest says "
                        f"{wanted.inputs} ({wanted.layout})")
    width = inputs[0].width if found.layout == "matrix" else len(inputs)
    if width is not None and width != len(manifest.features):
        problems.append(f"input width {width}, manifest lists {len(manifest.features)} features")
    if problems:
        raise ArtifactError(
            f"model file {onnx_path} disagrees with its manifest: {'; '.join(problems)}"
        )


def _version_key(version: str) -> tuple[int, ...] | None:
    """``"10"`` -> ``(10,)``, ``"1.2"`` -> ``(1, 2)``; None for a name that is no version."""
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return None


def list_versions(models_dir: Path, name: str) -> list[str]:
    """The versions of model ``name`` under ``models_dir``, oldest first (numeric order)."""
    model_dir = Path(models_dir) / name
    if not model_dir.is_dir():
        return []
    found = [p.name for p in model_dir.iterdir() if p.is_dir() and _version_key(p.name) is not None]
    return sorted(found, key=lambda v: _version_key(v) or ())


def list_models(models_dir: Path) -> list[str]:
    """Names of the models under ``models_dir`` that have at least one version."""
    root = Path(models_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and list_versions(root, p.name))


def reference_quantiles(models_dir: Path) -> dict[str, dict[str, Quantiles]]:
    """Per model name and version under ``models_dir``: its score's reference quantile
    function (from the manifest; a version without one, or with an unreadable manifest,
    is left out and logged)."""
    found: dict[str, dict[str, Quantiles]] = {}
    for name in list_models(models_dir):
        for version in list_versions(models_dir, name):
            try:
                quantiles = score_quantiles(load_manifest(Path(models_dir) / name / version))
            except ModelError as exc:
                log.warning("no score scale for %s/%s: %s", name, version, exc)
                continue
            if quantiles is None:
                log.warning("no score scale for %s/%s: its manifest has no score_quantiles "
                            "(re-run `python models/train.py`)", name, version)
                continue
            found.setdefault(name, {})[version] = quantiles
    return found


def resolve_model(models_dir: Path, name: str, version: str | None = None) -> Path:
    """The directory of ``name`` at ``version`` (the newest, numerically, when None).

    Raises :class:`ModelError` listing what exists when it is not there.
    """
    versions = list_versions(models_dir, name)
    if not versions:
        known = ", ".join(list_models(models_dir)) or "none"
        raise ModelError(
            f"no model named {name!r} in {models_dir} (models there: {known}); "
            "point RENDEZVOUS_MODELS_DIR (or --models-dir) at a directory of "
            "<name>/<version>/model.onnx, or unset it for the bundled models"
        )
    chosen = versions[-1] if version is None else str(version)
    if chosen not in versions:
        raise ModelError(
            f"model {name!r} has no version {chosen!r} in {models_dir} "
            f"(versions there: {', '.join(versions)})"
        )
    return Path(models_dir) / name / chosen
