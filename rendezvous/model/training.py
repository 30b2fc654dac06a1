"""The project's training code: the estimators, their deterministic ONNX export, and the
manifest written beside each artifact (sha256, features, held-out metrics, training
reference). ``models/train.py`` trains the bundled models with it; ``rendezvous model
train`` trains a new version from archived inputs and feedback labels with it.

Deterministic: the estimators have fixed seeds, skl2onnx's export of a fitted estimator
is a pure function of it, and the manifest holds no time stamp, so the same rows give
the same bytes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import skl2onnx
import sklearn
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.base import ClassifierMixin
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from rendezvous.model.dataset import Split
from rendezvous.model.manifest import (
    MODEL_FILE,
    QUANTILE_LEVELS,
    Feature,
    Manifest,
    Metrics,
    Reference,
    TrainingData,
    write_manifest,
)
from rendezvous.model.reference import distribution, score_table
from rendezvous.model.runtime import session_options

# Opsets every ONNX Runtime since 1.12 runs; pinned so an skl2onnx upgrade
# does not silently change the artifact.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
OUTPUT = "score = probability of class 1 (benign); label = argmax"


def build_estimators() -> dict[str, ClassifierMixin]:
    """The unfitted estimators, by model name."""
    return {
        # Accurate and slower: the preferred answer.
        "primary": GradientBoostingClassifier(n_estimators=200, max_depth=4, random_state=0),
        # Fast and stable: the baseline that shows drift and answers when primary is late.
        "canary": Pipeline(
            [("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=1000))]
        ),
    }


def onnx_bytes(estimator: ClassifierMixin, n_features: int) -> bytes:
    """The fitted estimator as a serialized ONNX model with tensor outputs.

    Input ``input`` float32 ``[None, n_features]``; outputs ``label`` int64
    ``[N]`` and ``probabilities`` float32 ``[N, 2]`` (no ZipMap, so no dicts).
    """
    final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    model = to_onnx(
        estimator,
        initial_types=[("input", FloatTensorType([None, n_features]))],
        options={id(final): {"zipmap": False}},
        target_opset=TARGET_OPSET,
    )
    return model.SerializeToString()


def _scores(model: bytes, rows: np.ndarray) -> np.ndarray:
    """P(class 1) from the exported bytes, exactly as a worker will compute it."""
    session = ort.InferenceSession(model, sess_options=session_options())
    _, probabilities = session.run(["label", "probabilities"], {"input": rows})
    return probabilities[:, 1].astype(np.float64)


def build_manifest(
    name: str, version: str, estimator: ClassifierMixin, model: bytes, data: Split,
    window: TrainingData | None = None,
) -> Manifest:
    """The manifest of an exported model; metrics and the score reference come from the artifact."""
    test_scores = _scores(model, data.X_test)
    train_scores = _scores(model, data.X_train)
    return Manifest(
        name=name,
        version=version,
        sha256=hashlib.sha256(model).hexdigest(),
        features=[Feature(name=f, dtype="float32") for f in data.feature_names],
        output=OUTPUT,
        metrics=Metrics(
            auc=round(float(roc_auc_score(data.y_test, test_scores)), 6),
            accuracy=round(float(accuracy_score(data.y_test, test_scores > 0.5)), 6),
            rows=len(data.y_test),
        ),
        reference=Reference(
            levels=QUANTILE_LEVELS,
            rows=len(data.y_train),
            features={
                f: distribution(data.X_train[:, i]) for i, f in enumerate(data.feature_names)
            },
            score=distribution(train_scores),
            score_quantiles=score_table(train_scores),
        ),
        estimator=" ".join(repr(estimator).split()),
        trained_with={
            "scikit-learn": sklearn.__version__,
            "skl2onnx": skl2onnx.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": ort.__version__,
            "numpy": np.__version__,
        },
        training=window,
    )


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def export(
    name: str, estimator: ClassifierMixin, data: Split, out: Path, version: str = "1",
    window: TrainingData | None = None,
) -> Manifest:
    """Write ``out/<name>/<version>/model.onnx`` and ``model.yaml``; return the manifest."""
    directory = out / name / version
    directory.mkdir(parents=True, exist_ok=True)
    model = onnx_bytes(estimator, len(data.feature_names))
    manifest = build_manifest(name, version, estimator, model, data, window)
    _write_atomic(directory / MODEL_FILE, model)
    write_manifest(manifest, directory)
    return manifest


