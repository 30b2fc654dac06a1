"""Decoding and validating one inference request, in the order that bounds its cost:
the JSON with its large parts left raw, then every input's datatype and shape, then
each input's values (JSON or binary), then the rows in the model's order."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rendezvous.gateway.codec.binary_data import split_binary
from rendezvous.gateway.codec.datatypes import is_number
from rendezvous.gateway.codec.heads import read_heads
from rendezvous.gateway.codec.messages import InferCall, RequestOutput
from rendezvous.gateway.codec.model_io import OUTPUTS, ModelIO
from rendezvous.gateway.codec.raw_request import (
    read_parameters,
    read_raw_request,
    read_requested_outputs,
)
from rendezvous.gateway.codec.rows import read_rows
from rendezvous.gateway.codec.tensors import read_tensors
from rendezvous.gateway.errors import BadRequest
from rendezvous.messages import MAX_ID_LENGTH

ROW_SUFFIX_LENGTH = 48
"""Room kept in a request id for ``.<token>.<row>``, within :data:`MAX_ID_LENGTH`: a
32-hex-digit token (128 bits, :func:`rendezvous.gateway.service.pipeline_id`) and a row
number of up to 12 digits."""


def decode_request(body: bytes | bytearray, model: ModelIO | Sequence[str], max_rows: int,
                   header_length: str | None = None) -> InferCall:
    """Decode and validate an inference request for ``model`` (a :class:`ModelIO`, or the
    names of a binary classifier's ``float32`` features); :class:`BadRequest` says what is
    wrong, naming the feature when a value does not fit it. Every input's shape is checked
    against the model and ``max_rows`` before any ``data`` is decoded."""
    io = model if isinstance(model, ModelIO) else ModelIO.numeric(model)
    json_part, binary = split_binary(body, header_length)
    request = read_raw_request(json_part)
    if request.id is not None and len(request.id) > MAX_ID_LENGTH - ROW_SUFFIX_LENGTH:
        raise BadRequest(f"id longer than {MAX_ID_LENGTH - ROW_SUFFIX_LENGTH} characters")
    heads = read_heads(request.inputs, io, max_rows)
    tensors = read_tensors(request.inputs, heads, binary)
    rows = read_rows(tensors, io, max_rows)
    parameters = read_parameters(request.parameters, "parameters")
    outputs = read_requested_outputs(request.outputs)
    return InferCall(request.id, rows, _timeout_ms(parameters),
                     _outputs(outputs, io.outputs), _progressive(parameters))


def _timeout_ms(parameters: dict[str, Any]) -> float | None:
    timeout = parameters.get("timeout")
    if timeout is None:
        return None
    if not is_number(timeout) or not 0 < timeout < math.inf:
        raise BadRequest("parameters.timeout must be a positive number of microseconds")
    return float(timeout) / 1000.0


def _progressive(parameters: dict[str, Any]) -> bool:
    progressive = parameters.get("progressive", False)
    if not isinstance(progressive, bool):
        raise BadRequest("parameters.progressive must be true or false")
    return progressive


def _outputs(requested: list[RequestOutput] | None,
             available: tuple[str, ...] = OUTPUTS) -> tuple[str, ...]:
    if not requested:
        return available
    names = [o.name for o in requested]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise BadRequest(f"unknown outputs {unknown[:5]}; this model has {list(available)}")
    return tuple(n for n in available if n in names)
