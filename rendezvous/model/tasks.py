"""What an imported graph does (binary, multiclass, regression) and how well: the task and
class labels from its outputs and the label column, the label column read as those
classes, the per-task metrics, and the sentence saying what the score means.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rendezvous.backtest.stats import label_key, quality
from rendezvous.messages import Label
from rendezvous.model.errors import ImportRefused
from rendezvous.model.manifest import Metrics, Signature, Task
from rendezvous.model.runtime import Prediction
from rendezvous.model.tabular import Column


def detect_task(wanted: str, signature: Signature, outputs: dict[str, Any],
                graph_classes: list[Label] | None, truth: Column | None
                ) -> tuple[Task, list[Label], str]:
    """``(task, classes, why)`` for ``--task wanted`` (``auto``: found) from the graph's
    outputs on the data; :class:`ImportRefused` when it cannot tell or ``wanted`` cannot be."""
    if signature.probabilities is not None:
        probabilities = outputs[signature.probabilities]
        if isinstance(probabilities, list):  # ZipMap: one {class: p} per row, graph's order
            classes = graph_classes or (list(probabilities[0]) if probabilities else [])
        else:
            k = probabilities.shape[1] if probabilities.ndim == 2 else 0
            seen = _distinct(truth)
            classes = (graph_classes if graph_classes and len(graph_classes) == k
                       else seen if len(seen) == k else list(range(k)))
        k = len(classes)
        found: Task = "binary" if k == 2 else "multiclass"
        if k < 2 or wanted == "regression" or (wanted == "binary" and k != 2):
            raise ImportRefused(f"--task {wanted}: output {signature.probabilities!r} holds the "
                                f"probabilities of {k} classes")
        task: Task = found if wanted == "auto" else wanted  # type: ignore[assignment]
        return task, classes, f"{'auto: ' * (wanted == 'auto')}probabilities of {k} classes"
    assert signature.value is not None
    values = np.asarray(outputs[signature.value], dtype=np.float64).ravel()
    unit = bool(values.size and np.isfinite(values).all() and values.min() >= 0
                and values.max() <= 1)
    seen = _distinct(truth)
    spread = f"output {signature.value!r} in [{values.min():.4g}, {values.max():.4g}]"
    if wanted == "multiclass":
        raise ImportRefused(f"--task multiclass: the graph has no probabilities output, only "
                            f"a value per row ({signature.value!r}); name the probabilities "
                            "output with --output probabilities=NAME")
    if wanted == "binary" and not unit:
        raise ImportRefused(f"--task binary: {spread}, not a probability in [0, 1]")
    if wanted == "binary" or (wanted == "auto" and unit and truth is not None
                              and truth.numeric and set(seen) == {0, 1}):
        classes = seen if len(seen) == 2 else [0, 1]
        why = f"{spread}, label classes 0 and 1" if wanted == "auto" else "--task binary"
        return "binary", classes, f"{'auto: ' * (wanted == 'auto')}{why}"
    if wanted == "auto" and unit and truth is None:
        raise ImportRefused(f"cannot tell the task: one value per row, all in [0, 1] ({spread}): "
                            "a probability (--task binary) or a value (--task regression)? "
                            "Pass --task, or --label with the true labels")
    return "regression", [], ("--task regression" if wanted != "auto" else
                              f"auto: one value per row, {spread}"
                              + (f", label with {len(seen)} distinct values" if truth else ""))


def _distinct(column: Column | None) -> list[Label]:
    """The distinct values of a label column, sorted (as exporters order ``classes_``)."""
    if column is None:
        return []
    values = np.unique(column.values)
    if column.kind == "number" and np.array_equal(values, np.round(values)):
        values = values.astype(np.int64)
    return [v if isinstance(v, str) else int(v) if float(v).is_integer() else str(v)
            for v in values.tolist()]


def expected_labels(truth: Column, classes: list[Label], task: Task) -> np.ndarray:
    """The label column as the task reads it: a regression's numbers, or each row's class as
    the model has it; :class:`ImportRefused` naming values the model has no class for."""
    if task == "regression":
        if not truth.numeric:
            raise ImportRefused(f"--label {truth.name!r} holds text; a regression's label is a "
                                "number")
        return truth.values.astype(np.float64)
    by_key = {label_key(c): c for c in classes}
    mapped = [by_key.get(label_key(v)) for v in truth.values.tolist()]
    unknown = sorted({label_key(v) for v, m in zip(truth.values.tolist(), mapped, strict=True)
                      if m is None})
    if unknown:
        raise ImportRefused(f"--label {truth.name!r} holds values that are not classes of the "
                            f"model: {', '.join(unknown[:5])} (classes: "
                            f"{', '.join(map(str, classes))})")
    result = np.empty(len(mapped), dtype=object)
    result[:] = mapped
    return result


def measure(task: Task, prediction: Prediction, expected: np.ndarray,
            classes: list[Label]) -> Metrics:
    """The task's metrics on every row, computed as the backtest computes them
    (:func:`rendezvous.backtest.stats.quality`; binary: AUC, accuracy; multiclass: accuracy,
    log loss; regression: RMSE, MAE, R²), six significant digits; None where undefined."""
    found = quality(task, expected.tolist(), prediction.scores, prediction.labels,
                    prediction.probabilities, classes)
    shown = {k: float(f"{v:.6g}") for k, v in found.items()
             if k != "rows" and v is not None and np.isfinite(v)}
    return Metrics(rows=len(expected), **shown)


def meaning(task: Task, classes: list[Label], signature: Signature) -> str:
    """What the score (and label) of this task mean, in words, for the manifest."""
    if task == "regression":
        return f"score = the predicted value (output {signature.value}); no label"
    if task == "multiclass":
        return (f"label = the most probable of {len(classes)} classes; score = its probability; "
                f"probabilities = one per class (output {signature.probabilities})")
    negative, positive = classes
    if signature.probabilities is not None:
        return (f"score = probability of class {positive} (output {signature.probabilities}); "
                f"label = {negative} or {positive}")
    return (f"score = output {signature.value}, the probability of class {positive}; label = "
            f"{positive} when score >= 0.5, else {negative}")
