"""A caller's features as rows of one model's inputs: checked like serve checks an input event.

In process the features come as Python values, not JSON: an ``int`` is taken as the number
it is (JSON decoding makes it a float), a numpy array as its list, and a value that is no
finite number (NaN, inf: JSON cannot carry them) is refused like any other bad value. What
does not fit gets the same reason serve would give (:func:`rendezvous.messages.feature_row`),
and the request is answered ``rejected``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rendezvous.messages import FeatureSchema, FeatureValue, InputEvent, Invalid, feature_row

FeaturesLike = Mapping[str, Any] | Sequence[Any] | np.ndarray
"""One request's features: by name, or a sequence in the model's feature order."""


def to_row(features: FeaturesLike, schema: FeatureSchema, rid: str) -> list[FeatureValue] | Invalid:
    """``features`` in ``schema``'s order with every value of its feature's type, or why not."""
    if isinstance(features, np.ndarray):
        features = features.tolist()
    if isinstance(features, Mapping):
        names = schema.names
        if len(features) == len(names) and all(n in features for n in names):
            row = [_number(features[n]) for n in names]
        else:
            return _mismatch(dict(features), rid, schema)
    elif isinstance(features, Sequence) and not isinstance(features, str | bytes):
        if len(features) != len(schema.names):
            return Invalid(f"expected {len(schema.names)} features, got {len(features)}", rid)
        row = [_number(v) for v in features]
    else:
        return Invalid("features must be a mapping by name or a sequence in the model's "
                       f"feature order, got {type(features).__name__}", rid)
    for name, value in zip(schema.names, row, strict=True):
        if value.__class__ is float and not math.isfinite(value):
            return Invalid(f"feature {name!r} must be a finite number, got {value!r}", rid)
    return schema.check(row, rid)


def to_matrix(rows: list[list[FeatureValue]], schema: FeatureSchema) -> np.ndarray:
    """Checked rows as the array ``Model.predict`` takes: float32 when every feature is a
    number, else objects (as the worker's batches)."""
    if schema.numeric:
        return np.array(rows, dtype=np.float32).reshape(len(rows), len(schema.names))
    matrix = np.empty((len(rows), len(schema.names)), dtype=object)
    for i, row in enumerate(rows):
        matrix[i] = row
    return matrix


def _number(value: Any) -> Any:
    """An int (not a bool) or numpy number as the float JSON decoding would make of it."""
    cls = value.__class__
    if cls is float or cls is str:
        return value
    if cls is int or isinstance(value, np.integer | np.floating):
        return float(value)
    return value


def _mismatch(features: dict[str, Any], rid: str, schema: FeatureSchema) -> Invalid:
    """serve's own reason for features whose names do not fit."""
    found = feature_row(InputEvent(rid, {k: _number(v) for k, v in features.items()}), schema)
    return found if isinstance(found, Invalid) else Invalid("feature mismatch", rid)
