"""Each input's name, datatype and shape checked against the model and ``max_rows``, and
the inputs together a form the model takes: all before any ``data`` is decoded, so the
work a request can cause is bounded by the shapes, not by the body."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rendezvous.gateway.codec.datatypes import DATATYPES, is_int
from rendezvous.gateway.codec.model_io import FEATURES_INPUT, ModelIO
from rendezvous.gateway.codec.raw_request import (
    TOO_LONG,
    RawInput,
    absent,
    read_parameters,
    small,
)
from rendezvous.gateway.errors import BadRequest


@dataclass(frozen=True)
class Head:
    """An input's name, datatype and shape, checked before its data is read."""

    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Any]


def read_heads(inputs: list[RawInput], io: ModelIO, max_rows: int) -> list[Head]:
    """Every input's datatype and shape checked, its rows within ``max_rows``, and the
    inputs' names a form the model takes: all before any ``data`` is decoded."""
    if not inputs:
        raise BadRequest("no inputs")
    heads: list[Head] = []
    seen: set[str] = set()
    for tensor in inputs:
        if tensor.name in seen:
            raise BadRequest(f"input {tensor.name!r} given twice")
        seen.add(tensor.name)
        if tensor.datatype not in DATATYPES:
            raise BadRequest(f"input {tensor.name!r}: datatype {tensor.datatype!r}, expected "
                             f"one of {', '.join(DATATYPES)}")
        if absent(tensor.shape):
            raise BadRequest(f"input {tensor.name!r} has no shape")
        shape = small(tensor.shape)
        if not (isinstance(shape, list) and shape and len(shape) <= 2
                and all(is_int(d) and d >= 0 for d in shape)):
            shown = "(too long)" if shape is TOO_LONG else shape
            raise BadRequest(f"input {tensor.name!r}: shape {shown} is not [N] or [N, F]")
        if not 1 <= shape[0] <= max_rows:
            raise BadRequest(f"{shape[0]} rows; a request carries 1 to {max_rows}")
        width = max(len(io.names), 1)
        if math.prod(shape) > max_rows * width:
            raise BadRequest(f"input {tensor.name!r}: shape {shape}, more values than "
                             f"{max_rows} rows of {width} features")
        heads.append(Head(tensor.name, tensor.datatype, shape,
                          read_parameters(tensor.parameters, f"input {tensor.name!r}")))
    names = set(seen)
    if not (FEATURES_INPUT in names and io.matrix):
        unknown = sorted(names - set(io.names))
        missing = [n for n in io.names if n not in names]
        if unknown or missing:
            raise BadRequest(_form_error(io, unknown, missing))
    elif len(names) != 1:
        raise BadRequest(f"give either {FEATURES_INPUT!r} or one input per feature, not both")
    return heads


def _form_error(io: ModelIO, unknown: list[str], missing: list[str]) -> str:
    if FEATURES_INPUT in unknown and not io.matrix:
        strings = ", ".join(repr(s) for s in io.strings[:5])
        return (f"this model takes one input per feature, not {FEATURES_INPUT!r} [N, F] "
                f"(its features are not all numbers: {strings} "
                f"{'is a string' if len(io.strings) == 1 else 'are strings'}, given as BYTES)")
    forms = (f"{FEATURES_INPUT!r} [N, {len(io.names)}] or one [N] per feature" if io.matrix
             else "one [N] per feature")
    wrong = [f"no input for features {missing[:5]}" if missing else "",
             f"unknown inputs {unknown[:5]}" if unknown else ""]
    return f"inputs must be {forms}: {', '.join(w for w in wrong if w)}"
