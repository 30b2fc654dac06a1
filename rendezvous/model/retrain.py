"""Retrain a model from what production saw: archived raw inputs joined with feedback labels
by request id, fitted and exported with the project's training code
(:mod:`rendezvous.model.training`) as the next version of the model.

Deterministic for the same inputs: the rows are ordered by (record time, request id),
whatever order the archive files were written in; the held-out split and the
estimators have fixed seeds; nothing in the manifest depends on the clock or the paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rendezvous.archive import read_archive
from rendezvous.messages import Invalid, decode_input, feature_row
from rendezvous.model.dataset import SPLIT_SEED, TEST_SIZE, Split
from rendezvous.model.errors import ModelError
from rendezvous.model.manifest import Manifest, TrainingData
from rendezvous.model.runtime import _version_key, list_versions
from rendezvous.model.training import build_estimators, export

MIN_ROWS = 40
"""Fewer labelled rows than this (or a class with fewer than 4) cannot be trained and
evaluated on a held-out quarter."""


@dataclass(frozen=True)
class LabeledRows:
    """Archived inputs that have a feedback label, in a fixed order."""

    X: np.ndarray
    y: np.ndarray
    ids: list[str]
    times_ms: list[float]
    inputs: int
    """Distinct valid archived requests (labelled or not)."""


def join_labels(archive: Path, labels: dict[str, int], feature_names: list[str]) -> LabeledRows:
    """Every valid archived input with a label in ``labels``, ordered by (time, id)."""
    table = read_archive(archive, "input")
    values = table["value"].to_pylist()
    times = table["timestamp_ms"].to_pylist()
    found: dict[str, tuple[float, list[float]]] = {}
    for value, ts in zip(values, times, strict=True):
        event = decode_input(value)
        if isinstance(event, Invalid) or event.id in found:
            continue
        row = feature_row(event, feature_names)
        if isinstance(row, Invalid):
            continue
        found[event.id] = (float(ts if ts is not None else 0), row)  # type: ignore[assignment]
    labelled = sorted((t, rid) for rid, (t, _) in found.items() if rid in labels)
    ids = [rid for _, rid in labelled]
    x = np.array([found[rid][1] for rid in ids], dtype=np.float32).reshape(
        len(ids), len(feature_names))
    y = np.array([int(labels[rid]) for rid in ids], dtype=np.int64)
    return LabeledRows(x, y, ids, [t for t, _ in labelled], len(found))


def next_version(models_dir: Path, name: str) -> str:
    """One more than the highest integer version of ``name`` (``"1"`` when there is none)."""
    versions = [_version_key(v) for v in list_versions(models_dir, name)]
    majors = [v[0] for v in versions if v]
    return str(max(majors, default=0) + 1)


def held_out_split(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) row indices: about a quarter held out, stratified by label, and
    identical feature rows kept on one side (production repeats inputs; a repeat on both
    sides would grade the model on rows it learned). Fixed seed."""
    from sklearn.model_selection import StratifiedGroupKFold

    _, groups = np.unique(x, axis=0, return_inverse=True)
    folds = StratifiedGroupKFold(n_splits=round(1 / TEST_SIZE), shuffle=True,
                                 random_state=SPLIT_SEED)
    train_idx, test_idx = next(folds.split(x, y, groups.reshape(-1)))
    return train_idx, test_idx


def train_version(name: str, rows: LabeledRows, feature_names: list[str], out: Path,
                  version: str) -> Manifest:
    """Fit ``name``'s estimator on ``rows`` (a held-out quarter, stratified), export it as
    ``out/<name>/<version>/`` and return its manifest (held-out AUC in ``metrics``)."""
    estimators = build_estimators()
    if name not in estimators:
        raise ModelError(f"no training code for model {name!r} (known: "
                         f"{', '.join(sorted(estimators))})")
    counts = np.bincount(rows.y, minlength=2) if len(rows.y) else np.zeros(2, dtype=int)
    if len(rows.y) < MIN_ROWS or len(counts) != 2 or counts.min() < 4:
        raise ModelError(f"{len(rows.y)} labelled rows (per class {counts.tolist()}): too few "
                         f"to train and hold out a quarter (need >= {MIN_ROWS}, >= 4 per "
                         "class); let more feedback arrive")
    train_idx, test_idx = held_out_split(rows.X, rows.y)
    x_train, x_test = rows.X[train_idx], rows.X[test_idx]
    y_train, y_test = rows.y[train_idx], rows.y[test_idx]
    data = Split(x_train, x_test, y_train, y_test, feature_names)
    estimator = estimators[name].fit(x_train, y_train)
    window = TrainingData("archive+feedback", min(rows.times_ms), max(rows.times_ms),
                          len(rows.y), len(y_train), len(y_test))
    return export(name, estimator, data, out, version, window)
