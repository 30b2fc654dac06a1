"""Where the demo's events and feedback come from: the packaged data set, or a user's own
rows (``rendezvous demo --data FILE [--label COLUMN]``).

A user's file (CSV or Parquet, read by :mod:`rendezvous.model.tabular`, as ``model
import`` reads it) must hold a column per feature of the primary model; each row becomes
an input event with its features by name (strings as strings), and the label column
the feedback of that event's request, as the file has it (integer, number or text).
Rows are taken in file order and cycled when the demo sends more events than there are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rendezvous.demo.errors import DemoError
from rendezvous.messages import FeatureValue
from rendezvous.model.manifest import Manifest

FeedbackLabel = int | float | str


class EventSource(Protocol):
    """Events of a load and the true labels of the same requests."""

    def events(self, n: int, seed: int, prefix: str) -> list[dict[str, Any]]:
        """``n`` input events, ids ``{prefix}-{seed}-{i}``, features by name."""

    def labels(self, n: int, seed: int) -> list[FeedbackLabel | None] | None:
        """The true label of each of :meth:`events` ``(n, seed)`` (None: that one has none),
        or None when the source has no labels at all."""

    def example(self) -> dict[str, FeatureValue] | None:
        """One row of features by name in model order (the gateway call); None: the
        bundled one."""


class Bundled:
    """The packaged breast-cancer rows, drawn with replacement (what ``make demo`` sends)."""

    def events(self, n: int, seed: int, prefix: str) -> list[dict[str, Any]]:
        from rendezvous.model import sample_events

        return sample_events(n, seed=seed, prefix=prefix)

    def labels(self, n: int, seed: int) -> list[FeedbackLabel | None] | None:
        from rendezvous.model.dataset import sample_labels

        return list(sample_labels(n, seed))

    def example(self) -> dict[str, FeatureValue] | None:
        return None


BUNDLED = Bundled()


@dataclass(frozen=True)
class ReferenceRows:
    """Rows like a model's training data, drawn from its manifest's reference
    (:mod:`rendezvous.model.samples`): what ``up`` warms any model with, and shows."""

    manifest: Manifest

    def events(self, n: int, seed: int, prefix: str) -> list[dict[str, Any]]:
        from rendezvous.model.samples import example_events

        return example_events(self.manifest, n, seed, prefix=f"{prefix}-{seed}")

    def labels(self, n: int, seed: int) -> list[FeedbackLabel | None] | None:
        return None

    def example(self) -> dict[str, FeatureValue] | None:
        from rendezvous.model.samples import example_rows

        return example_rows(self.manifest, 1, seed=7)[0]


@dataclass(frozen=True)
class DataRows:
    """A user's rows, checked against the model's features."""

    path: Path
    rows: list[dict[str, FeatureValue]]
    """Each row's features by name, in the model's order."""
    label: str | None = None
    """The label column, when given."""
    truth: list[FeedbackLabel | None] | None = None
    """Per row, its label (None: empty in the file); None without a label column."""

    def events(self, n: int, seed: int, prefix: str) -> list[dict[str, Any]]:
        rows = self.rows
        return [{"id": f"{prefix}-{seed}-{i}", "features": rows[i % len(rows)]}
                for i in range(n)]

    def labels(self, n: int, seed: int) -> list[FeedbackLabel | None] | None:
        truth = self.truth
        return None if truth is None else [truth[i % len(truth)] for i in range(n)]

    def example(self) -> dict[str, FeatureValue] | None:
        return self.rows[0]

    def describe(self) -> str:
        """One line: the file, its rows and what is taken from it."""
        labelled = "" if self.truth is None else (
            f", labels from {self.label!r} ({sum(t is not None for t in self.truth):,} rows)")
        return (f"{self.path.name}: {len(self.rows):,} rows of "
                f"{len(self.rows[0]):,} features{labelled}")


def read_rows(path: Path, manifest: Manifest, label: str | None = None) -> DataRows:
    """The rows of ``path`` as ``manifest``'s model takes them, and ``label``'s values.

    Raises :class:`DemoError` naming the file and column when a feature's column is
    missing, has an empty value, or holds text where the model takes numbers (or the
    label column is missing)."""
    from rendezvous.model.errors import ModelError
    from rendezvous.model.tabular import read_table

    model = f"{manifest.name}/{manifest.version}"
    strings = [f.name for f in manifest.features if f.is_string]
    text_labels = label is not None and any(isinstance(c, str) for c in manifest.classes)
    try:
        table = read_table(path, text=[*strings, *([label] if text_labels and label else [])])
        columns = [table.column(f.name, f"model {model} takes feature {f.name!r}")
                   for f in manifest.features]
        truth_column = (table.column(label, f"--label {label!r}") if label is not None
                        else None)
    except ModelError as exc:
        raise DemoError(str(exc)) from None
    values: list[list[FeatureValue]] = []
    for feature, column in zip(manifest.features, columns, strict=True):
        where = f"{path.name}, column {column.name!r}"
        if column.first_missing is not None:
            raise DemoError(f"{where}: row {column.first_missing} is empty; the demo sends "
                            "every row as it is: fill or drop the empty values")
        if feature.is_string:
            values.append([str(v) for v in column.values.tolist()])
        elif column.numeric:
            values.append([float(v) for v in column.values.tolist()])
        else:
            raise DemoError(f"{where}: holds {column.describe()}, but model {model} takes "
                            f"a number for feature {feature.name!r}")
    names = manifest.feature_names
    rows = [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]
    truth = None if truth_column is None else [
        _label(v, manifest) for v in truth_column.values.tolist()]
    return DataRows(path, rows, label, truth)


def _label(value: Any, manifest: Manifest) -> FeedbackLabel | None:
    """A label as the file has it; None for an empty one. A whole number of a classifier
    whose classes are integers is that integer (a CSV column with an empty value reads
    as floats)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer() and manifest.is_classifier and all(
            isinstance(c, int) for c in manifest.classes):
        return int(value)
    if isinstance(value, str) and value == "":
        return None
    return value if isinstance(value, int | float | str) else str(value)
