"""Score archived inputs with a candidate model and join them with what production answered.

Inputs are decoded and validated exactly as the workers do (``decode_input``,
``feature_row``); a record that fails either is counted, never scored. The
production side is, per request id, the score the ``against`` model gave in
the recorded :class:`~rendezvous.messages.Decision` (default: the chosen model's).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from rendezvous.messages import Invalid, Undecodable, decode_decision, decode_input, feature_row
from rendezvous.model import Model

CHOSEN = "chosen"
"""``--against`` value meaning: whichever model's answer production chose."""


@dataclass
class Comparison:
    """Candidate and production scores on the same requests, and what could not be compared."""

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
    """Every scored request's features, in the candidate's order (for input drift)."""

    @property
    def rows_per_s(self) -> float:
        return self.scored / self.score_seconds if self.score_seconds > 0 else 0.0


def score_inputs(values: list[bytes | None], model: Model,
                 batch_size: int = 4096) -> tuple[list[str], np.ndarray, int]:
    """``(ids, scores, invalid)``: each distinct valid request scored once, in archive order."""
    ids, scores, invalid, _ = score_rows(values, model, batch_size)
    return ids, scores, invalid


def score_rows(values: list[bytes | None], model: Model, batch_size: int = 4096
               ) -> tuple[list[str], np.ndarray, int, np.ndarray]:
    """:func:`score_inputs` and the feature rows scored (float32, in the model's order)."""
    names = model.feature_names
    ids: list[str] = []
    rows: list[list[float]] = []
    seen: set[str] = set()
    invalid = 0
    for value in values:
        event = decode_input(value)
        row = event if isinstance(event, Invalid) else feature_row(event, names)
        if isinstance(row, Invalid) or isinstance(event, Invalid):
            invalid += 1
            continue
        if event.id in seen:  # the same request produced twice: one answer is expected
            continue
        seen.add(event.id)
        ids.append(event.id)
        rows.append(row)  # type: ignore[arg-type]  # numbers only, for now
    matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), len(names))
    scores = np.empty(len(rows), dtype=np.float64)
    for begin in range(0, len(rows), batch_size):
        scores[begin:begin + batch_size] = model.predict(matrix[begin:begin + batch_size]).scores
    return ids, scores, invalid, matrix


def production_scores(values: list[bytes | None], against: str = CHOSEN) -> dict[str, float]:
    """Request id -> the recorded score of model ``against`` (or of the chosen model)."""
    return {rid: answer[0] for rid, answer in production_answers(values, against).items()}


def production_answers(values: list[bytes | None], against: str = CHOSEN
                       ) -> dict[str, tuple[float, str, str]]:
    """Request id -> (score, model, version) of the recorded answer of model ``against`` (or
    of the chosen model). Shadow answers are never production's."""
    found: dict[str, tuple[float, str, str]] = {}
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
                found[decision.id] = (candidate.score, candidate.model, candidate.version)
                break
    return found


def compare(inputs: pa.Table, decisions: pa.Table, model: Model, against: str = CHOSEN,
            batch_size: int = 4096) -> Comparison:
    """Score ``inputs`` (archive rows) with ``model`` and join with ``decisions`` by request id."""
    started = time.perf_counter()
    ids, scores, invalid, rows = score_rows(inputs["value"].to_pylist(), model, batch_size)
    seconds = time.perf_counter() - started
    recorded = production_answers(decisions["value"].to_pylist(), against)
    keep = [i for i, rid in enumerate(ids) if rid in recorded]
    joined_ids = [ids[i] for i in keep]
    return Comparison(
        ids=joined_ids,
        candidate=scores[keep] if keep else np.zeros(0),
        production=np.array([recorded[rid][0] for rid in joined_ids], dtype=np.float64),
        inputs=inputs.num_rows,
        invalid=invalid,
        scored=len(ids),
        unmatched=len(ids) - len(keep),
        decisions=decisions.num_rows,
        score_seconds=seconds,
        production_models=[recorded[rid][1:] for rid in joined_ids],
        rows=rows,
    )
