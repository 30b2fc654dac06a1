"""Find, verify and run a model artifact with ONNX Runtime.

A worker is one core, so each session runs on one thread, sequentially, with
every graph optimisation on. ``Model.predict`` is one ORT ``run`` per call:
batch the rows before calling it.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort

from rendezvous.model.errors import ArtifactError, InputShapeError, ModelError
from rendezvous.model.manifest import MODEL_FILE, Manifest, load_manifest, score_quantiles
from rendezvous.model.quantiles import Quantiles

log = logging.getLogger(__name__)

RETRAIN_HINT = "re-run `python models/train.py` (or restore the file from git)"


class Model:
    """A verified model version, ready to score float32 rows."""

    def __init__(self, manifest: Manifest, session: ort.InferenceSession, path: Path) -> None:
        self.manifest = manifest
        self.name = manifest.name
        self.version = manifest.version
        self.path = path
        self.feature_names = manifest.feature_names
        self.n_features = len(self.feature_names)
        self._session = session
        self._input = session.get_inputs()[0].name
        self._outputs = ["label", "probabilities"]

    def __repr__(self) -> str:
        return f"Model({self.name!r}, version={self.version!r}, path={str(self.path)!r})"

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Score rows ``x`` of shape ``[n, n_features]``.

        Returns ``(scores, labels)``: scores are float64 P(class 1) of shape
        ``[n]``, labels int64 of shape ``[n]``.
        """
        rows = np.ascontiguousarray(x, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != self.n_features:
            raise InputShapeError(
                f"{self.name}/{self.version} takes rows of {self.n_features} features, "
                f"got an array of shape {rows.shape}"
            )
        labels, probabilities = self._session.run(self._outputs, {self._input: rows})
        return probabilities[:, 1].astype(np.float64), labels.astype(np.int64, copy=False)


def session_options() -> ort.SessionOptions:
    """One thread, sequential execution, all graph optimisations: one worker per core."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
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
    """Refuse a graph whose input width or outputs disagree with the manifest."""
    inputs = session.get_inputs()
    outputs = {o.name for o in session.get_outputs()}
    width = inputs[0].shape[-1] if len(inputs) == 1 and inputs[0].shape else None
    problems = []
    if len(inputs) != 1:
        problems.append(f"expected one input, found {len(inputs)}")
    elif width != len(manifest.features):
        problems.append(f"input width {width}, manifest lists {len(manifest.features)} features")
    if not {"label", "probabilities"} <= outputs:
        problems.append(f"outputs {sorted(outputs)}, expected label and probabilities")
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
