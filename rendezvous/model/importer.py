"""``rendezvous model import``: a user's ONNX graph and a data file become a model version.

The graph's signature is read by shape and type (:mod:`rendezvous.model.signature`) and
checked against the data (:mod:`rendezvous.model.tabular`); the task and the class labels
are found from the outputs and the label column; the rows are scored by the workers' own
runtime (the version is written to a temporary directory and loaded with
:func:`~rendezvous.model.runtime.load_model`), so the reference score quantiles are what a
worker computes. ``DIR/NAME/V`` appears by one rename once everything is known: a refusal
(:class:`ImportRefused`, naming the file, input, output or column) writes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import onnxruntime as ort

from rendezvous.model.errors import ImportRefused, InputShapeError
from rendezvous.model.graph import Graph, read_graph
from rendezvous.model.manifest import (
    MODEL_FILE,
    QUANTILE_LEVELS,
    Distribution,
    Feature,
    Manifest,
    Reference,
    Signature,
    write_manifest,
)
from rendezvous.model.reference import (
    category_counts,
    category_distribution,
    distribution,
    score_table,
)
from rendezvous.model.retrain import next_version
from rendezvous.model.runtime import Model, _version_key, list_versions, load_model
from rendezvous.model.signature import (
    NUMERIC_TYPES,
    STRING_TYPE,
    SignatureError,
    signature_of,
)
from rendezvous.model.tabular import Column, Table, read_table, usable
from rendezvous.model.tasks import detect_task, expected_labels, meaning, measure
from rendezvous.settings import PACKAGE_DIR

ROLES = ("probabilities", "label", "value")
MAX_CATEGORIES = 1000
"""A string feature's manifest lists at most this many categories (the most frequent)."""


@dataclass(frozen=True)
class Imported:
    """What ``model import`` wrote."""

    manifest: Manifest
    directory: Path


def import_model(models_dir: Path, name: str, onnx_path: Path, data_path: Path, *,
                 label: str | None = None, version: str | None = None, task: str = "auto",
                 features: Sequence[str] | None = None, outputs: Sequence[str] = (),
                 force: bool = False, say: Callable[[str], None] = lambda line: None
                 ) -> Imported:
    """Import ``onnx_path`` as ``models_dir/name/version`` (default: the next integer
    version), checked against and scored on ``data_path``; ``say`` gets one line per
    finding. Raises :class:`ImportRefused` (nothing written) when it cannot."""
    models_dir = Path(models_dir)
    version = _target(models_dir, name, version, force)
    graph = read_graph(onnx_path)
    say(f"model: {graph.path} ({graph.producer})")
    table = read_table(data_path, text=[p.name for p in graph.inputs if p.type == STRING_TYPE])
    say(f"data: {table.path} ({table.rows:,} rows; columns {', '.join(table.names)}"
        f"{f'; label {label}' if label else ''})")
    truth = usable(table.column(label, "--label")) if label is not None else None
    signature, columns = match(graph, table, label, features, _roles(outputs))
    say(f"inputs: {', '.join(p.describe() for p in graph.inputs)} -> "
        f"{'one matrix of the features' if signature.layout == 'matrix' else 'one per feature'}")
    roles = {getattr(signature, r): r for r in ROLES if getattr(signature, r)}
    say("outputs: " + ", ".join(f"{p.describe()} = {roles.get(p.name, 'unused')}"
                                for p in graph.outputs))
    typed = _features(graph, signature, columns)
    draft = Manifest(name=name, version=version, sha256=hashlib.sha256(graph.data).hexdigest(),
                     features=typed, output="", metrics=None, reference=_reference(columns),
                     estimator=graph.producer, trained_with=_producer(graph), task="regression",
                     classes=[], signature=signature, origin="imported")
    rows = worker_rows(columns)
    raw = _run(graph, Model(draft, graph.session, graph.path.parent), rows, table)
    found, classes, why = detect_task(task, signature, raw, graph.classlabels, truth)
    say(f"task: {found} ({why})")
    if classes:
        say(f"classes: {', '.join(map(str, classes))}"
            f"{f' (positive: {classes[1]})' if found == 'binary' else ''}")
    say("features: " + ", ".join(f"{f.name} {f.dtype}" + (
        f" ({len(f.categories)} categories)" if f.categories is not None else "")
        for f in typed))
    expected = expected_labels(truth, classes, found) if truth is not None else None
    manifest = msgspec.structs.replace(draft, task=found, classes=classes,
                                       output=meaning(found, classes, signature))
    with _staging(graph, models_dir, name, version) as staging:
        write_manifest(manifest, staging)
        prediction = load_model(staging).predict(rows)
        bad = np.flatnonzero(~np.isfinite(prediction.scores))
        if bad.size:
            raise ImportRefused(f"{graph.path.name} scores {bad.size} rows of {table.path.name} "
                                f"as NaN or infinite (first: row {bad[0] + 1})")
        metrics = None if expected is None else measure(found, prediction, expected, classes)
        manifest = msgspec.structs.replace(manifest, metrics=metrics, reference=_reference(
            columns, prediction.scores, with_quantiles=found != "multiclass"))
        write_manifest(manifest, staging)
    if metrics is not None:
        say(f"metrics: {metrics.summary().rsplit(' (', 1)[0]} on all {table.rows:,} rows of "
            f"{table.path.name} (the file as given: held out only if its rows were)")
    say(f"reference: {table.rows:,} rows, {len(columns)} features, score quantiles "
        f"{'at 101 levels' if found != 'multiclass' else 'none (multiclass: never mapped)'}")
    directory = models_dir / name / version
    say(f"written: {directory} (model.onnx sha256 {manifest.sha256[:12]}, model.yaml)")
    return Imported(manifest, directory)


def _target(models_dir: Path, name: str, version: str | None, force: bool) -> str:
    """The version to write; refuses the package's own models, a bad name or version, and an
    existing version without ``force``."""
    if models_dir.resolve().is_relative_to((PACKAGE_DIR / "models").resolve()):
        raise ImportRefused(f"{models_dir} holds the models shipped inside the package: import "
                            "into a models directory of your own (rendezvous --models-dir DIR "
                            "model import ...)")
    if not name or name.startswith(".") or "/" in name or "\\" in name:
        raise ImportRefused(f"model name {name!r}: use letters, digits, '-' or '_'")
    if version is None:
        return next_version(models_dir, name)
    if _version_key(version) is None:
        raise ImportRefused(f"--version {version!r}: a version is numbers with dots, e.g. 2 or "
                            "1.1")
    if version in list_versions(models_dir, name) and not force:
        raise ImportRefused(f"{models_dir / name / version} exists already: pass another "
                            "--version, or --force to replace it")
    return version


def _roles(outputs: Sequence[str]) -> dict[str, str]:
    """``--output ROLE=NAME`` options as ``{role: output name}``."""
    roles = {}
    for given in outputs:
        role, sep, output = given.partition("=")
        if not sep or role not in ROLES or not output:
            raise ImportRefused(f"--output {given!r}: expected ROLE=NAME with ROLE one of "
                                f"{', '.join(ROLES)}")
        roles[role] = output
    return roles


def match(graph: Graph, table: Table, label: str | None, features: Sequence[str] | None,
          roles: dict[str, str]) -> tuple[Signature, list[Column]]:
    """The graph's signature and the data column of each feature, in the graph's order;
    :class:`ImportRefused` naming the input or column that does not fit."""
    inputs = graph.inputs
    single = len(inputs) == 1 and inputs[0].rank == 2 and inputs[0].type in NUMERIC_TYPES
    names = list(features or [n for n in table.names if n != label]) if single else None
    try:
        signature = signature_of(inputs, graph.outputs, names, roles or None)
    except SignatureError as exc:
        raise ImportRefused(f"{graph.path.name}: {exc}") from None
    for port in inputs:
        if isinstance(port.shape[0] if port.shape else None, int):
            raise ImportRefused(
                f"input {port.name} {port.type} {list(port.shape)} takes a fixed {port.shape[0]} "
                "rows per call; workers score batches of any size: export it with a dynamic "
                "first dimension (None / dynamic_axes)")
    if signature.layout == "columns":
        if features is not None and sorted(features) != sorted(signature.inputs):
            raise ImportRefused(f"--features: this graph takes one input per feature, named "
                                f"{', '.join(signature.inputs)}; leave --features out")
        names = signature.inputs
    assert names is not None
    if label is not None and label in names:
        raise ImportRefused(f"--label {label!r} is one of the features the graph takes")
    columns = []
    for i, feature in enumerate(names):
        port = inputs[i] if signature.layout == "columns" else inputs[0]
        column = usable(table.column(feature, f"input {port.describe()}"))
        if port.type == STRING_TYPE and column.kind != "string":
            raise ImportRefused(f"column {feature!r} holds {column.type} values, but input "
                                f"{port.describe()} takes strings")
        if port.type != STRING_TYPE and not column.numeric:
            what = "text" if column.kind == "string" else f"{column.type} values"
            raise ImportRefused(
                f"column {feature!r} holds {what} (e.g. {column.values[0]!r}), but input "
                f"{port.describe()} takes numbers"
                + ("" if signature.layout == "columns" else
                   f": pass --features with the columns it takes{' or --label' * (not label)}"))
        if NUMERIC_TYPES.get(port.type) == "int64" and column.kind == "number" and not \
                np.array_equal(column.values, np.round(column.values)):
            raise ImportRefused(f"column {feature!r} holds fractions, but input "
                                f"{port.describe()} takes integers")
        columns.append(column)
    width = inputs[0].width
    if signature.layout == "matrix" and width is not None and width != len(columns):
        which = "--features" if features else "the columns other than the label"
        hint = "" if features or label else " (or --label to leave the label out)"
        raise ImportRefused(f"input {inputs[0].describe()} takes {width} features per row, but "
                            f"{table.path.name} gives {len(columns)} ({which}: "
                            f"{', '.join(names)}): pass --features with the {width} it takes"
                            f"{hint}")
    return signature, columns


def _features(graph: Graph, signature: Signature, columns: list[Column]) -> list[Feature]:
    """The manifest's features: each column's name, the dtype its input takes and, for a
    string, its categories (the :data:`MAX_CATEGORIES` most frequent, sorted)."""
    by_name = {p.name: p for p in graph.inputs}
    typed = []
    for column in columns:
        port = graph.inputs[0] if signature.layout == "matrix" else by_name[column.name]
        if port.type == STRING_TYPE:
            seen = sorted(c for c, _ in category_counts(column.values)[:MAX_CATEGORIES])
            typed.append(Feature(column.name, "string", seen))
        else:
            typed.append(Feature(column.name, NUMERIC_TYPES[port.type]))
    return typed


def _reference(columns: list[Column], scores: np.ndarray | None = None,
               with_quantiles: bool = True) -> Reference:
    """The data's reference: every feature's distribution and, given the scores, theirs
    and (``with_quantiles``) their 101-level quantile table."""
    return Reference(
        levels=QUANTILE_LEVELS, rows=len(columns[0].values),
        features={c.name: category_distribution(c.values) if c.kind == "string"
                  else distribution(c.values) for c in columns},
        score=distribution(scores) if scores is not None else Distribution(),
        score_quantiles=score_table(scores) if scores is not None and with_quantiles else None)


def _producer(graph: Graph) -> dict[str, str]:
    """The exporter's name and version (when the file says) and ONNX Runtime's."""
    made_by = {graph.producer_name: graph.producer_version} if graph.producer_name else {}
    return made_by | {"onnxruntime": ort.__version__}


def worker_rows(columns: list[Column]) -> np.ndarray:
    """The rows as a worker hands them to ``Model.predict``: float32 ``[n, F]`` when every
    feature is a number, else objects (Python floats and strings)."""
    if all(c.numeric for c in columns):
        return np.column_stack([c.values for c in columns]).astype(np.float32)
    rows = np.empty((len(columns[0].values), len(columns)), dtype=object)
    for i, c in enumerate(columns):
        rows[:, i] = c.values if c.kind == "string" else c.values.astype(np.float64).tolist()
    return rows


def _run(graph: Graph, model: Model, rows: np.ndarray, table: Table) -> dict[str, Any]:
    """The graph's outputs on ``rows`` (fed as the runtime feeds them), by output name."""
    signature = model.signature
    names = [n for n in (getattr(signature, r) for r in ROLES) if n is not None]
    try:
        outputs = dict(zip(names, graph.session.run(names, model.feed(rows)), strict=True))
    except InputShapeError as exc:
        raise ImportRefused(f"the rows of {table.path.name} do not fit: {exc}") from None
    except Exception as exc:  # ORT raises its own untyped exceptions
        raise ImportRefused(f"ONNX Runtime failed to score the rows of {table.path.name}: "
                            f"{exc}") from None
    for name, value in outputs.items():
        if len(value) != table.rows:
            raise ImportRefused(f"output {name!r} gives {len(value)} results for the "
                                f"{table.rows} rows of {table.path.name}: a graph must give "
                                "one per row")
    return outputs


@contextlib.contextmanager
def _staging(graph: Graph, models_dir: Path, name: str, version: str) -> Iterator[Path]:
    """A temporary directory beside ``models_dir/name/version`` holding ``model.onnx``;
    renamed to it (replacing an old one) when the block ends well, removed otherwise, with
    any directory made for it. A temporary name is no version, so no reader lists it."""
    parent = models_dir / name
    made = [d for d in (models_dir, parent) if not d.exists()]
    parent.mkdir(parents=True, exist_ok=True)
    staging = parent / f".import-{version}-{secrets.token_hex(4)}"
    staging.mkdir()  # not mkdtemp: its mode 0700 would stay on the version directory
    try:
        (staging / MODEL_FILE).write_bytes(graph.data)
        yield staging
        target = parent / version
        if target.exists():
            old = parent / f".replaced-{version}-{secrets.token_hex(4)}"
            os.replace(target, old)
            os.replace(staging, target)
            shutil.rmtree(old)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for directory in reversed(made):
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
