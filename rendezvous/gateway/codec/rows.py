"""The request's rows in the model's order, each value checked against its feature's
dtype from the manifest: an ``int64`` feature takes whole numbers within int64, a
``float32`` one numbers within FP32's range, a ``string`` one only BYTES."""

from __future__ import annotations

import numpy as np

from rendezvous.gateway.codec.datatypes import FP32_MAX, INT64_LIMIT, NUMERIC_DATATYPES
from rendezvous.gateway.codec.model_io import FEATURES_INPUT, ModelIO
from rendezvous.gateway.codec.tensors import Tensor
from rendezvous.gateway.errors import BadRequest
from rendezvous.messages import FeatureValue


def read_rows(tensors: dict[str, Tensor], io: ModelIO,
              max_rows: int) -> list[list[FeatureValue]]:
    """The rows, in the model's order; the form was checked by
    :func:`~rendezvous.gateway.codec.heads.read_heads`."""
    if FEATURES_INPUT in tensors and io.matrix:
        rows = _matrix_rows(tensors[FEATURES_INPUT], io)
    else:
        rows = _column_rows(tensors, io)
    if not 1 <= len(rows) <= max_rows:
        raise BadRequest(f"{len(rows)} rows; a request carries 1 to {max_rows}")
    return rows


def _matrix_rows(tensor: Tensor, io: ModelIO) -> list[list[FeatureValue]]:
    """The rows of a ``features`` ``[N, F]`` tensor (FP32 or FP64)."""
    if tensor.datatype not in ("FP32", "FP64"):
        raise BadRequest(f"input {FEATURES_INPUT!r}: datatype {tensor.datatype!r}, "
                         "expected FP32 or FP64")
    assert isinstance(tensor.values, np.ndarray)
    if len(tensor.shape) != 2 or tensor.shape[1] != len(io.names):
        raise BadRequest(f"input {FEATURES_INPUT!r}: shape {tensor.shape}, "
                         f"expected [N, {len(io.names)}]")
    matrix = tensor.values.reshape(tensor.shape)
    if io.integer_columns:
        _check_integers(matrix[:, io.integer_columns],
                        [io.names[i] for i in io.integer_columns])
    if tensor.datatype != "FP32" and io.float32_columns:
        _check_float32(matrix[:, io.float32_columns],
                       [io.names[i] for i in io.float32_columns])
    rows: list[list[FeatureValue]] = matrix.tolist()
    return rows


def _column_rows(tensors: dict[str, Tensor], io: ModelIO) -> list[list[FeatureValue]]:
    """The rows of one ``[N]`` / ``[N, 1]`` input per feature, in the model's order."""
    columns: list[list[FeatureValue]] = []
    n: int | None = None
    for name, dtype in zip(io.names, io.dtypes, strict=True):
        tensor = tensors[name]
        if dtype == "string":
            if tensor.datatype != "BYTES":
                raise BadRequest(f"feature {name!r} is a string: its input must be BYTES, "
                                 f"not {tensor.datatype}")
        elif tensor.datatype not in NUMERIC_DATATYPES:
            raise BadRequest(f"feature {name!r} is a number ({dtype}): its input must be "
                             f"FP32, FP64 or INT64, not {tensor.datatype}")
        if len(tensor.shape) == 2 and tensor.shape[1] != 1:
            raise BadRequest(f"input {name!r}: shape {tensor.shape}; a feature's input is "
                             "[N] or [N, 1]")
        if n is None:
            n = tensor.shape[0]
        elif tensor.shape[0] != n:
            raise BadRequest(f"per-feature inputs must all have the same N: {name!r} "
                             f"{tensor.shape[0]}, {io.names[0]!r} {n}")
        values = tensor.values
        if isinstance(values, np.ndarray):
            if dtype == "int64":
                _check_integers(values, [name])
            elif dtype == "float32" and tensor.datatype != "FP32":
                _check_float32(values, [name])
            columns.append(values.tolist())
        else:
            columns.append(values)  # type: ignore[arg-type]  # list[str] is list[FeatureValue]
    return [list(row) for row in zip(*columns, strict=True)]


def _check_integers(values: np.ndarray, names: list[str]) -> None:
    """Every value of an ``int64`` feature is a whole number within int64."""
    bad = (values != np.trunc(values)) | (np.abs(values) >= INT64_LIMIT)
    if bad.any():
        column = int(np.nonzero(bad.reshape(len(values), -1).any(axis=0))[0][0])
        raise BadRequest(f"feature {names[column]!r} is an integer (int64): whole numbers "
                         "within int64 only")


def _check_float32(values: np.ndarray, names: list[str]) -> None:
    """Every value of a ``float32`` feature is within FP32's range."""
    bad = np.abs(values) > FP32_MAX
    if bad.any():
        column = int(np.nonzero(bad.reshape(len(values), -1).any(axis=0))[0][0])
        raise BadRequest(f"feature {names[column]!r} is float32: values beyond FP32's range")
