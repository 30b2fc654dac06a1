"""The one definition of the training data, its split, and sample events.

Training (``models/train.py``), tests, load generators and the backtest all
read the data through this module, so feature names, dtypes and the held-out
rows are the same everywhere. The data is scikit-learn's bundled Wisconsin
breast-cancer set (569 rows, 30 features, no download); class 1 is *benign*.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

SPLIT_SEED = 0
"""Seed of the train/held-out split; fixed so every user sees the same rows."""

TEST_SIZE = 0.25
"""Fraction of rows held out from training (stratified by class)."""


@dataclass(frozen=True)
class Dataset:
    """Feature rows (float32), labels (int64) and snake_case feature names, in column order."""

    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]


@dataclass(frozen=True)
class Split:
    """A stratified train / held-out split of a :class:`Dataset`."""

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    feature_names: list[str]


def snake_case(name: str) -> str:
    """``"mean concave points"`` -> ``"mean_concave_points"``."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def load_dataset() -> Dataset:
    """The bundled breast-cancer data, features as float32 (the dtype the models take)."""
    # Imported here so that serving processes never pay for importing scikit-learn.
    from sklearn.datasets import load_breast_cancer

    raw = load_breast_cancer()
    return Dataset(
        X=np.ascontiguousarray(raw.data, dtype=np.float32),
        y=np.asarray(raw.target, dtype=np.int64),
        feature_names=[snake_case(n) for n in raw.feature_names],
    )


def split(dataset: Dataset | None = None) -> Split:
    """The fixed stratified split: ~75% training rows, ~25% held out."""
    from sklearn.model_selection import train_test_split

    data = dataset if dataset is not None else load_dataset()
    X_train, X_test, y_train, y_test = train_test_split(
        data.X, data.y, test_size=TEST_SIZE, stratify=data.y, random_state=SPLIT_SEED
    )
    return Split(X_train, X_test, y_train, y_test, data.feature_names)


def sample_events(
    n: int, seed: int = 0, named: bool = True, prefix: str = "req"
) -> list[dict[str, Any]]:
    """``n`` input events drawn with replacement from the data's rows.

    Each is ``{"id": f"{prefix}-{seed}-{i}", "features": ...}`` with features
    as an object by name (``named=True``) or a list in model order. Values are
    plain Python floats of the float32 rows, so they survive JSON exactly.
    """
    data = load_dataset()
    rows = _sample_rows(n, seed, len(data.X))
    events: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        values = [float(v) for v in data.X[row]]
        features: dict[str, float] | list[float] = (
            dict(zip(data.feature_names, values, strict=True)) if named else values
        )
        events.append({"id": f"{prefix}-{seed}-{i}", "features": features})
    return events


def sample_labels(n: int, seed: int = 0) -> list[int]:
    """The true labels of :func:`sample_events` ``(n, seed)``, in the same order (the ground
    truth a feedback topic would carry)."""
    data = load_dataset()
    return [int(data.y[row]) for row in _sample_rows(n, seed, len(data.X))]


def _sample_rows(n: int, seed: int, total: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, total, size=n)
