"""Every input's values, from its JSON ``data`` or its binary data, checked to be
numbers its datatype holds (finite; within FP32 for FP32; whole and within int64 for
INT64) or UTF-8 text for BYTES."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rendezvous.gateway.codec.binary_data import binary_values
from rendezvous.gateway.codec.datatypes import FP32_MAX, INT64_LIMIT
from rendezvous.gateway.codec.heads import Head
from rendezvous.gateway.codec.json_data import json_values
from rendezvous.gateway.codec.raw_request import RawInput, absent
from rendezvous.gateway.errors import BadRequest


@dataclass(frozen=True)
class Tensor:
    """One decoded input: numbers as a float64 array of ``shape``, or BYTES as a flat
    list of strings."""

    name: str
    datatype: str
    shape: list[int]
    values: np.ndarray | list[str]


def read_tensors(inputs: list[RawInput], heads: list[Head],
                 binary: memoryview | None) -> dict[str, Tensor]:
    """name -> the input's values; numbers finite (and within FP32 for FP32, whole and
    within int64 for INT64), BYTES valid UTF-8 text. ``data`` is decoded only once its
    values are counted and fit the input's (checked) shape."""
    tensors: dict[str, Tensor] = {}
    offset = 0
    for tensor, head in zip(inputs, heads, strict=True):
        size = math.prod(head.shape)
        size_param = head.parameters.get("binary_data_size")
        values: np.ndarray | list[str]
        if size_param is not None:
            values, offset = binary_values(head, size, size_param, binary, offset)
        elif not absent(tensor.data):
            values = json_values(head, tensor.data, size)
        else:
            raise BadRequest(f"input {head.name!r} has no data")
        if isinstance(values, np.ndarray):
            _check_numbers(head.name, head.datatype, values)
        tensors[head.name] = Tensor(head.name, head.datatype, head.shape, values)
    if binary is not None and offset != len(binary):
        raise BadRequest(f"{len(binary) - offset} bytes of binary data belong to no input")
    return tensors


def _check_numbers(name: str, datatype: str, values: np.ndarray) -> None:
    if not np.isfinite(values).all():
        raise BadRequest(f"input {name!r}: values must be finite numbers")
    if datatype == "FP32" and (np.abs(values) > FP32_MAX).any():
        raise BadRequest(f"input {name!r}: values must be finite FP32 numbers")
    if datatype == "INT64" and ((values != np.trunc(values)).any()
                                or (np.abs(values) >= INT64_LIMIT).any()):
        raise BadRequest(f"input {name!r}: INT64 data must be whole numbers within int64")
