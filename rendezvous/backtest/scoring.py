"""Score archived inputs with a candidate model and join them with what production answered.

Inputs are decoded and validated exactly as the workers do (``decode_input`` and
``feature_row`` with the model's feature schema: numbers, and strings where the manifest
types a feature so); a record that fails either is counted, never scored. The production
side is, per request id, the answer the ``against`` model gave in the recorded
:class:`~rendezvous.messages.Decision` (default: the chosen model's): its score and, for a
classifier, its class (``Candidate.label``; a decision recorded before candidates carried
one has none: that request is left out of the label agreement, and counted). Ground-truth
labels, for quality, are the archived ``feedback`` topic's (the last label of an id counts).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from rendezvous.messages import (
    FeatureSchema,
    FeatureValue,
    Invalid,
    Label,
    Undecodable,
    decode_decision,
    decode_feedback,
    decode_input,
    feature_row,
)
from rendezvous.model import Model
from rendezvous.model.runtime import Prediction

CHOSEN = "chosen"
"""``--against`` value meaning: whichever model's answer production chose."""

Truth = int | float | str
"""A feedback label: a classifier's true class, or a regression's true value."""


class Answer(NamedTuple):
    """One recorded production answer: score, model, version and (when known) class."""

    score: float
    model: str
    version: str
    label: Label | None = None


@dataclass
class Comparison:
    """Candidate and production answers on the same requests, and what could not be compared."""

    ids: list[str]
    candidate: np.ndarray
    production: np.ndarray
    inputs: int
    """Archived input records (deduplicated)."""
    invalid: int
    """Inputs the pipeline would reject (undecodable, or features that do not fit the model)."""
    scored: int
    """Distinct valid requests the candidate scored."""
    unmatched: int
    """Scored requests with no recorded production score from the ``against`` model."""
    decisions: int
    """Archived decision records (deduplicated)."""
    score_seconds: float
    """Time spent decoding and scoring the inputs."""
    production_models: list[tuple[str, str]] = field(default_factory=list)
    """(model, version) that gave each production score (empty when not known)."""
    rows: np.ndarray | None = None
    """Every scored request's features, in the candidate's order (for input drift): float32
    when every feature is a number, else objects."""
    candidate_labels: list[Label] | None = None
    """The candidate's class of each compared request (classifiers)."""
    candidate_probabilities: np.ndarray | None = None
    """The candidate's class probabilities ``[rows, K]`` in its classes' order (multiclass)."""
    production_labels: list[Label | None] | None = None
    """Production's recorded class of each compared request, None where the decision has
    none (classifiers)."""
    truth: list[Truth | None] | None = None
    """The feedback label of each compared request (None: none arrived); None when the
    archive holds no feedback at all."""

    @property
    def rows_per_s(self) -> float:
        return self.scored / self.score_seconds if self.score_seconds > 0 else 0.0


@dataclass
class Scoring:
    """Each distinct valid request of an archive, scored once, in archive order."""

    ids: list[str]
    rows: np.ndarray
    prediction: Prediction
    invalid: int


def decode_rows(values: Sequence[bytes | None], schema: FeatureSchema
                ) -> tuple[list[str], np.ndarray, int]:
    """``(ids, rows, invalid)``: every distinct valid request's features in the schema's
    order (float32 ``[n, F]`` when every feature is a number, else objects), as the workers
    build them."""
    width = len(schema.names)
    ids: list[str] = []
    rows: list[list[FeatureValue]] = []
    seen: set[str] = set()
    invalid = 0
    for value in values:
        event = decode_input(value, schema)
        if isinstance(event, Invalid):
            invalid += 1
            continue
        row = feature_row(event, schema)
        if isinstance(row, Invalid):
            invalid += 1
            continue
        if event.id in seen:  # the same request produced twice: one answer is expected
            continue
        seen.add(event.id)
        ids.append(event.id)
        rows.append(row)
    if schema.numeric:
        matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), width)
    else:
        matrix = np.empty((len(rows), width), dtype=object)
        for i, row in enumerate(rows):
            matrix[i] = row
    return ids, matrix, invalid


def predict(model: Model, rows: np.ndarray, batch_size: int = 4096) -> Prediction:
    """``model``'s answers to ``rows``, ``batch_size`` rows per ONNX Runtime call."""
    n = len(rows)
    scores = np.empty(n, dtype=np.float64)
    labels: list[Label] | None = [] if model.task != "regression" else None
    probabilities: list[np.ndarray] = []
    for begin in range(0, n, batch_size):
        batch = model.predict(rows[begin:begin + batch_size])
        scores[begin:begin + len(batch.scores)] = batch.scores
        if labels is not None and batch.labels is not None:
            labels.extend(batch.labels)
        if batch.probabilities is not None:
            probabilities.append(batch.probabilities)
    if labels is not None and len(labels) != n:
        labels = None  # the graph gave no classes
    if model.task == "multiclass":
        width = len(model.classes)
        return Prediction(scores, labels, np.concatenate(probabilities) if probabilities
                          else np.zeros((0, width)))
    return Prediction(scores, labels)


def score_rows(values: Sequence[bytes | None], model: Model, batch_size: int = 4096) -> Scoring:
    """Decode ``values`` for ``model`` and score every distinct valid request once."""
    ids, rows, invalid = decode_rows(values, model.schema)
    return Scoring(ids, rows, predict(model, rows, batch_size), invalid)


def score_inputs(values: list[bytes | None], model: Model,
                 batch_size: int = 4096) -> tuple[list[str], np.ndarray, int]:
    """``(ids, scores, invalid)``: each distinct valid request scored once, in archive order."""
    scoring = score_rows(values, model, batch_size)
    return scoring.ids, scoring.prediction.scores, scoring.invalid


def production_scores(values: list[bytes | None], against: str = CHOSEN) -> dict[str, float]:
    """Request id -> the recorded score of model ``against`` (or of the chosen model)."""
    return {rid: answer.score for rid, answer in production_answers(values, against).items()}


def production_answers(values: Sequence[bytes | None], against: str = CHOSEN
                       ) -> dict[str, Answer]:
    """Request id -> the recorded :class:`Answer` of model ``against`` (or of the chosen
    model), with its class when the decision records one. Shadow answers are never
    production's."""
    found: dict[str, Answer] = {}
    for value in values:
        if not value:
            continue
        try:
            decision = decode_decision(value)
        except Undecodable:
            continue
        if decision.id in found:
            continue
        wanted = decision.chosen if against == CHOSEN else against
        for candidate in decision.candidates:
            if (candidate.model == wanted and not candidate.shadow
                    and candidate.score is not None and math.isfinite(candidate.score)):
                found[decision.id] = Answer(candidate.score, candidate.model, candidate.version,
                                            candidate.label)
                break
    return found


def feedback_labels(values: Sequence[bytes | None]) -> dict[str, Truth]:
    """Request id -> its feedback label (the last record of an id counts)."""
    found: dict[str, Truth] = {}
    for value in values:
        try:
            feedback = decode_feedback(value)
        except Undecodable:
            continue
        found[feedback.id] = feedback.label
    return found


def _column(table: pa.Table | None) -> list[bytes | None]:
    return [] if table is None or table.num_rows == 0 else table["value"].to_pylist()


def compare(inputs: pa.Table, decisions: pa.Table, model: Model, against: str = CHOSEN,
            batch_size: int = 4096, feedback: pa.Table | None = None) -> Comparison:
    """Score ``inputs`` (archive rows) with ``model`` and join with ``decisions`` by request
    id; ``feedback`` (archived labels) gives the ground truth."""
    started = time.perf_counter()
    scoring = score_rows(inputs["value"].to_pylist(), model, batch_size)
    seconds = time.perf_counter() - started
    recorded = production_answers(_column(decisions), against)
    keep = [i for i, rid in enumerate(scoring.ids) if rid in recorded]
    ids = [scoring.ids[i] for i in keep]
    answers = [recorded[rid] for rid in ids]
    prediction = scoring.prediction
    truths = feedback_labels(_column(feedback))
    return Comparison(
        ids=ids,
        candidate=prediction.scores[keep] if keep else np.zeros(0),
        production=np.array([a.score for a in answers], dtype=np.float64),
        inputs=inputs.num_rows,
        invalid=scoring.invalid,
        scored=len(scoring.ids),
        unmatched=len(scoring.ids) - len(keep),
        decisions=decisions.num_rows,
        score_seconds=seconds,
        production_models=[(a.model, a.version) for a in answers],
        rows=scoring.rows,
        candidate_labels=([prediction.labels[i] for i in keep]
                          if prediction.labels is not None else None),
        candidate_probabilities=(prediction.probabilities[keep]
                                 if prediction.probabilities is not None else None),
        production_labels=([a.label for a in answers] if model.task != "regression"
                           else None),
        truth=[truths.get(rid) for rid in ids] if truths else None,
    )
