"""Open Inference Protocol v2 over REST: the messages, decoding and validating an
inference request, and encoding the answer. No I/O here.

A request carries its rows either as one input ``features`` (FP32, shape
``[N, F]``, the manifest's feature order, data flat or nested row-major) or as
one FP32 input of shape ``[N]`` per feature name. Inputs may come as JSON data
or in Triton's binary tensor extension (``Inference-Header-Content-Length``:
a JSON header, then each input's raw little-endian bytes in order), which is
what tritonclient sends by default. Answers are always JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from rendezvous.gateway.errors import BadRequest
from rendezvous.messages import MAX_ID_LENGTH, Scored

FEATURES_INPUT = "features"
OUTPUTS = ("score", "label", "status", "model")
"""Output tensors of every answer, in this order."""
NO_LABEL = -1
"""``label`` of a row that got no model's answer (``timeout`` / ``rejected``)."""
ROW_SUFFIX_LENGTH = 24
"""Room kept in a request id for ``.<token>.<row>``, within :data:`MAX_ID_LENGTH`."""


class RequestInput(msgspec.Struct, frozen=True):
    """One input tensor of an inference request."""

    name: str
    shape: list[int]
    datatype: str
    data: list[float | list[float]] | None = None
    parameters: dict[str, Any] = {}


class RequestOutput(msgspec.Struct, frozen=True):
    """An output the caller asks for (all are returned when none is named)."""

    name: str
    parameters: dict[str, Any] = {}


class InferenceRequest(msgspec.Struct, frozen=True):
    """``POST /v2/models/{name}/infer``."""

    inputs: list[RequestInput]
    id: str | None = None
    parameters: dict[str, Any] = {}
    outputs: list[RequestOutput] | None = None


class ResponseOutput(msgspec.Struct, frozen=True):
    """One output tensor of an answer; ``data`` is flat, row-major."""

    name: str
    shape: list[int]
    datatype: str
    data: list[Any]


class InferenceResponse(msgspec.Struct, frozen=True):
    """The answer: one row of every output per input row."""

    model_name: str
    outputs: list[ResponseOutput]
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, str | float | bool] = {}


class TensorMetadata(msgspec.Struct, frozen=True):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(msgspec.Struct, frozen=True):
    """``GET /v2/models/{name}``: the inputs come from the model manifest."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: dict[str, str] = {}


class ServerMetadata(msgspec.Struct, frozen=True):
    """``GET /v2``."""

    name: str
    version: str
    extensions: list[str]


class ErrorBody(msgspec.Struct, frozen=True):
    """Every 4xx/5xx answer."""

    error: str


@dataclass(frozen=True)
class InferCall:
    """A validated inference request: what the gateway sends into the pipeline."""

    id: str | None
    rows: list[list[float]]
    timeout_ms: float | None
    """From ``parameters.timeout`` (microseconds, Triton's convention), if given."""
    outputs: tuple[str, ...]
    progressive: bool = False
    """``parameters.progressive``: the rows go in as progressive requests (their provisional
    results reach the scored topic; the HTTP answer is still the final one per row)."""


_encoder = msgspec.json.Encoder()
_request_decoder = msgspec.json.Decoder(InferenceRequest)
FP32_MAX = float(np.finfo(np.float32).max)
BINARY_HEADER = "inference-header-content-length"


def encode(message: msgspec.Struct) -> bytes:
    """Any message of this module as JSON bytes."""
    return _encoder.encode(message)


def decode_request(body: bytes, feature_names: list[str], max_rows: int,
                   header_length: str | None = None) -> InferCall:
    """Decode and validate an inference request; :class:`BadRequest` says what is wrong."""
    json_part, binary = _split_binary(body, header_length)
    try:
        request = _request_decoder.decode(json_part)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise BadRequest(f"malformed request: {str(exc)[:300]}") from None
    if request.id is not None and len(request.id) > MAX_ID_LENGTH - ROW_SUFFIX_LENGTH:
        raise BadRequest(f"id longer than {MAX_ID_LENGTH - ROW_SUFFIX_LENGTH} characters")
    columns = _tensors(request.inputs, binary)
    rows = _rows(columns, feature_names, max_rows)
    return InferCall(request.id, rows, _timeout_ms(request.parameters),
                     _outputs(request.outputs), _progressive(request.parameters))


def _split_binary(body: bytes, header_length: str | None) -> tuple[bytes, memoryview | None]:
    if header_length is None:
        return body, None
    try:
        n = int(header_length)
    except ValueError:
        raise BadRequest("Inference-Header-Content-Length is not an integer") from None
    if not 0 < n <= len(body):
        raise BadRequest(f"Inference-Header-Content-Length {n} outside the body "
                         f"of {len(body)} bytes")
    return body[:n], memoryview(body)[n:]


def _tensors(inputs: list[RequestInput], binary: memoryview | None) -> dict[str, np.ndarray]:
    """name -> float64 array of the given shape, every value finite in FP32."""
    if not inputs:
        raise BadRequest("no inputs")
    tensors: dict[str, np.ndarray] = {}
    offset = 0
    for tensor in inputs:
        if tensor.name in tensors:
            raise BadRequest(f"input {tensor.name!r} given twice")
        if tensor.datatype != "FP32":
            raise BadRequest(f"input {tensor.name!r}: datatype {tensor.datatype!r}, expected FP32")
        if not tensor.shape or any(d < 0 for d in tensor.shape) or len(tensor.shape) > 2:
            raise BadRequest(f"input {tensor.name!r}: shape {tensor.shape} is not [N] or [N, F]")
        size = math.prod(tensor.shape)
        size_param = tensor.parameters.get("binary_data_size")
        if size_param is not None:
            if binary is None or not _is_int(size_param) or size_param != 4 * size:
                raise BadRequest(f"input {tensor.name!r}: binary_data_size {size_param!r} "
                                 f"does not fit shape {tensor.shape} of FP32")
            chunk = binary[offset:offset + size_param]
            if len(chunk) != size_param:
                raise BadRequest(f"input {tensor.name!r}: body ends before its binary data")
            offset += size_param
            values = np.frombuffer(chunk, dtype="<f4").astype(np.float64)
        elif tensor.data is not None:
            values = _flatten(tensor, size)
        else:
            raise BadRequest(f"input {tensor.name!r} has no data")
        if not np.isfinite(values).all() or (np.abs(values) > FP32_MAX).any():
            raise BadRequest(f"input {tensor.name!r}: values must be finite FP32 numbers")
        tensors[tensor.name] = values.reshape(tensor.shape)
    if binary is not None and offset != len(binary):
        raise BadRequest(f"{len(binary) - offset} bytes of binary data belong to no input")
    return tensors


def _flatten(tensor: RequestInput, size: int) -> np.ndarray:
    data = tensor.data or []
    if any(isinstance(v, list) for v in data):
        if len(tensor.shape) != 2 or len(data) != tensor.shape[0] or not all(
                isinstance(row, list) and len(row) == tensor.shape[1] for row in data):
            raise BadRequest(f"input {tensor.name!r}: nested data does not have "
                             f"shape {tensor.shape}")
        values = np.array(data, dtype=np.float64).ravel()
    else:
        values = np.array(data, dtype=np.float64)
    if values.size != size:
        raise BadRequest(f"input {tensor.name!r}: {values.size} values for shape {tensor.shape}")
    return values


def _rows(tensors: dict[str, np.ndarray], names: list[str], max_rows: int) -> list[list[float]]:
    if FEATURES_INPUT in tensors:
        if len(tensors) != 1:
            raise BadRequest(f"give either {FEATURES_INPUT!r} or one input per feature, not both")
        matrix = tensors[FEATURES_INPUT]
        if matrix.ndim != 2 or matrix.shape[1] != len(names):
            raise BadRequest(f"input {FEATURES_INPUT!r}: shape {list(matrix.shape)}, "
                             f"expected [N, {len(names)}]")
    else:
        unknown = sorted(set(tensors) - set(names))
        missing = [n for n in names if n not in tensors]
        if unknown or missing:
            raise BadRequest(f"inputs must be {FEATURES_INPUT!r} [N, {len(names)}] or one [N] "
                             f"per feature; unknown {unknown[:5]}, missing {missing[:5]}")
        columns = [tensors[n] for n in names]
        if any(c.ndim != 1 and c.shape[1:] != (1,) for c in columns) or len(
                {c.shape[0] for c in columns}) != 1:
            raise BadRequest("per-feature inputs must all have shape [N] with the same N")
        matrix = np.column_stack([c.reshape(-1) for c in columns])
    n = matrix.shape[0]
    if not 1 <= n <= max_rows:
        raise BadRequest(f"{n} rows; a request carries 1 to {max_rows}")
    rows: list[list[float]] = matrix.tolist()
    return rows


def _timeout_ms(parameters: dict[str, Any]) -> float | None:
    timeout = parameters.get("timeout")
    if timeout is None:
        return None
    if not _is_number(timeout) or not 0 < timeout < math.inf:
        raise BadRequest("parameters.timeout must be a positive number of microseconds")
    return float(timeout) / 1000.0


def _progressive(parameters: dict[str, Any]) -> bool:
    progressive = parameters.get("progressive", False)
    if not isinstance(progressive, bool):
        raise BadRequest("parameters.progressive must be true or false")
    return progressive


def _outputs(requested: list[RequestOutput] | None) -> tuple[str, ...]:
    if not requested:
        return OUTPUTS
    names = [o.name for o in requested]
    unknown = [n for n in names if n not in OUTPUTS]
    if unknown:
        raise BadRequest(f"unknown outputs {unknown[:5]}; this model has {list(OUTPUTS)}")
    return tuple(n for n in OUTPUTS if n in names)


def parse_deadline_header(value: str | None) -> float | None:
    """``X-Deadline-Ms``: a positive number of milliseconds, or None if absent."""
    if value is None:
        return None
    try:
        ms = float(value)
    except ValueError:
        raise BadRequest("X-Deadline-Ms must be a number of milliseconds") from None
    if not 0 < ms < math.inf:
        raise BadRequest("X-Deadline-Ms must be positive")
    return ms


def choose_deadline(from_body: float | None, from_header: float | None,
                    default_ms: float, max_ms: float) -> float:
    """The request's deadline: the tighter of the two it named, else the default."""
    named = [d for d in (from_body, from_header) if d is not None]
    deadline = min(named) if named else default_ms
    if deadline > max_ms:
        raise BadRequest(f"deadline of {deadline:g} ms is above the gateway's {max_ms:g} ms")
    return deadline


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def response(model_name: str, model_version: str, request_id: str | None,
             results: list[Scored], outputs: tuple[str, ...],
             parameters: dict[str, str | float | bool]) -> InferenceResponse:
    """The answer for ``results`` (one per row, in row order)."""
    n = len(results)
    columns: dict[str, tuple[str, list[Any]]] = {
        # JSON has no NaN: a row without a score says null (tritonclient reads NaN).
        "score": ("FP32", [r.score for r in results]),
        "label": ("INT64", [NO_LABEL if r.label is None else r.label for r in results]),
        "status": ("BYTES", [r.status for r in results]),
        "model": ("BYTES", [r.model or "" for r in results]),
    }
    tensors = [ResponseOutput(name, [n], *columns[name]) for name in outputs]
    return InferenceResponse(model_name, tensors, model_version, request_id, parameters)
