"""Models for the embedded rendezvous' tests: fixed answers, raising, blocked, slowed.

Each is a :class:`rendezvous.worker.answers.RowModel` (what ``Embedded(models=[...])``
takes); their name and version ``1`` match the bundled models', so the bundled quantile
functions map their scores as serve maps the real ones'.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from rendezvous.messages import FeatureSchema
from rendezvous.model import Model, Prediction

SCHEMA = FeatureSchema(["x", "y"])
"""The doubles' features."""


class Fixed:
    """Answers ``score`` for every row (label 1 at 0.5 and above)."""

    task = "binary"

    def __init__(self, name: str, score: float, version: str = "1",
                 schema: FeatureSchema = SCHEMA) -> None:
        self.name, self.version, self.value, self.schema = name, version, score, schema

    def predict(self, rows: Any) -> Prediction:
        n = len(rows)
        return Prediction(np.full(n, self.value, dtype=np.float64),
                          [1 if self.value >= 0.5 else 0] * n)

    def probabilities_by_class(self, row: Any) -> dict[str, float]:
        raise AssertionError("binary models have no per-class probabilities")


class Raising(Fixed):
    """Raises ``RuntimeError(message)`` on every call."""

    def __init__(self, name: str, message: str = "boom", schema: FeatureSchema = SCHEMA) -> None:
        super().__init__(name, 0.0, schema=schema)
        self.message = message

    def predict(self, rows: Any) -> Prediction:
        raise RuntimeError(self.message)


class Blocked(Fixed):
    """Answers only once ``release`` is set (at most ``limit_s`` later): a model that misses
    every deadline of a test."""

    def __init__(self, name: str, release: threading.Event, score: float = 0.9,
                 limit_s: float = 10.0, schema: FeatureSchema = SCHEMA) -> None:
        super().__init__(name, score, schema=schema)
        self.release, self.limit_s = release, limit_s

    def predict(self, rows: Any) -> Prediction:
        self.release.wait(self.limit_s)
        return super().predict(rows)


class Slowed:
    """A real model that sleeps ``delay_ms`` after scoring, as the worker's ``--delay-ms``."""

    def __init__(self, model: Model, delay_ms: float) -> None:
        self.model, self.delay_s = model, delay_ms / 1000.0
        self.name, self.version, self.task = model.name, model.version, model.task
        self.schema = model.schema

    def predict(self, rows: Any) -> Prediction:
        prediction = self.model.predict(rows)
        time.sleep(self.delay_s)
        return prediction

    def probabilities_by_class(self, row: Any) -> dict[str, float]:
        return self.model.probabilities_by_class(row)
