"""Open Inference Protocol v2 over REST: the messages, decoding and validating an
inference request, and encoding the answer. No I/O here.

What a model takes and answers comes from its manifest (:class:`ModelIO`). A request
carries its rows in one of two forms:

- one input ``features`` (FP32 or FP64, shape ``[N, F]``, the manifest's feature order,
  data flat or nested row-major), offered only when every feature is a number;
- one input per feature, named as the feature, shape ``[N]`` or ``[N, 1]``: FP32, FP64
  or INT64 for a number, BYTES for a string (JSON: the data are strings; binary: each
  element a 4-byte little-endian length, then its UTF-8 bytes). Offered for every model.

A value must fit its feature: an ``int64`` feature takes whole numbers, a ``float32``
one numbers within FP32's range, a ``string`` one only BYTES; a request that does not
fit is a :class:`~rendezvous.gateway.errors.BadRequest` naming the feature. Should a
feature itself be named ``features``, the input of that name is that feature and the
``[N, F]`` form is not offered. Inputs may come as JSON data or in Triton's binary tensor
extension (``Inference-Header-Content-Length``: a JSON header, then each input's raw
little-endian bytes in order), which is what tritonclient sends by default. Answers are
always JSON: see :func:`response` for the outputs.

Decoding is bounded by the shapes, not by the body: the request is first read with every
tensor's ``data`` (and the shapes, parameters and outputs) left as raw JSON; each input's
name, datatype and shape are checked against the model and ``max_rows``, then each
``data`` is counted (commas outside strings, in C) before it is decoded. A body of 16 MiB
of ``0,`` under a ``[1, F]`` shape is refused without building a single float.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from rendezvous.gateway.errors import BadRequest
from rendezvous.messages import MAX_ID_LENGTH, FeatureValue, Label, Scored

if TYPE_CHECKING:
    from rendezvous.model.manifest import Manifest

FEATURES_INPUT = "features"
OUTPUTS = ("score", "label", "status", "model")
"""Output tensors of a classifier's answer, in this order (a binary classifier's: all of
them; :attr:`ModelIO.outputs` has every model's)."""
PROBABILITIES_OUTPUT = "probabilities"
NO_LABEL = -1
"""``label`` of a row that got no model's answer (``timeout`` / ``rejected``) when the
labels are integers (INT64); with string labels (BYTES) it is the empty string."""
ROW_SUFFIX_LENGTH = 48
"""Room kept in a request id for ``.<token>.<row>``, within :data:`MAX_ID_LENGTH`: a
32-hex-digit token (128 bits, :func:`rendezvous.gateway.service.pipeline_id`) and a row
number of up to 12 digits."""
NUMERIC_DATATYPES = ("FP32", "FP64", "INT64")
DATATYPES = (*NUMERIC_DATATYPES, "BYTES")
"""Input datatypes this gateway reads."""
FEATURE_DATATYPES = {"float32": "FP32", "float64": "FP64", "int64": "INT64", "string": "BYTES"}
"""The OIP datatype of each manifest dtype (what the metadata lists for a feature)."""
_ITEM_BYTES = {"FP32": 4, "FP64": 8, "INT64": 8}
_NUMPY = {"FP32": "<f4", "FP64": "<f8", "INT64": "<i8"}
INT64_LIMIT = float(2**63)


class ModelIO:
    """What one model takes and answers over OIP, from its manifest: the features (name
    and dtype, in the model's order), the task and the classes.

    The gateway builds it once from the manifest named by ``gateway.features_from``;
    :meth:`numeric` is a binary classifier over ``float32`` features (the bundled shape).
    """

    def __init__(self, features: Sequence[tuple[str, str]], task: str = "binary",
                 classes: Sequence[Label] = (0, 1)) -> None:
        self.names = [name for name, _ in features]
        self.dtypes = [dtype for _, dtype in features]
        self.task = task
        self.classes: list[Label] = list(classes) if task != "regression" else []
        self.strings = [n for n, d in features if d == "string"]
        self.all_numeric = not self.strings
        self.matrix = self.all_numeric and FEATURES_INPUT not in self.names
        """Whether the ``features`` ``[N, F]`` tensor is offered."""
        self.integer_columns = [i for i, d in enumerate(self.dtypes) if d == "int64"]
        self.float32_columns = [i for i, d in enumerate(self.dtypes) if d == "float32"]
        self.multiclass = task == "multiclass"
        self.label_datatype: str | None = (
            None if task == "regression" else
            "INT64" if all(_is_int(c) for c in self.classes) else "BYTES")
        """INT64 when every class is an integer, BYTES when any is a string; None: no
        ``label`` output (regression)."""
        self.score_datatype = "FP64" if task == "regression" else "FP32"
        outputs = ["score"]
        if self.label_datatype is not None:
            outputs.append("label")
        outputs += ["status", "model"]
        if self.multiclass:
            outputs.append(PROBABILITIES_OUTPUT)
        self.outputs = tuple(outputs)
        """Output tensors of every answer, in this order (a multiclass model's
        ``probabilities`` last, so the others keep their places)."""
        self.class_keys = [str(c) for c in self.classes]
        """The classes as :attr:`Scored.probabilities` keys them."""

    @classmethod
    def numeric(cls, names: Sequence[str]) -> ModelIO:
        """A binary classifier (classes 0, 1) over ``float32`` features ``names``."""
        return cls([(name, "float32") for name in names])

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> ModelIO:
        return cls([(f.name, f.dtype) for f in manifest.features], manifest.task,
                   manifest.classes)

    def classes_text(self) -> str:
        """The classes as a JSON array (``[0,1,2]``, ``["a","b"]``): the ``classes``
        parameter; the columns of ``probabilities`` are in this order."""
        return json.dumps(self.classes, separators=(",", ":"))


class RequestInput(msgspec.Struct, frozen=True):
    """One input tensor of an inference request."""

    name: str
    shape: list[int]
    datatype: str
    data: list[float | str | list[float | str]] | None = None
    """Numbers (FP32, FP64, INT64) or strings (BYTES), flat or nested row-major."""
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
    rows: list[list[FeatureValue]]
    """Each row's feature values in the model's order: numbers as float, strings as str."""
    timeout_ms: float | None
    """From ``parameters.timeout`` (microseconds, Triton's convention), if given."""
    outputs: tuple[str, ...]
    progressive: bool = False
    """``parameters.progressive``: the rows go in as progressive requests (their provisional
    results reach the scored topic; the HTTP answer is still the final one per row)."""


_encoder = msgspec.json.Encoder()
FP32_MAX = float(np.finfo(np.float32).max)
BINARY_HEADER = "inference-header-content-length"


def encode(message: msgspec.Struct) -> bytes:
    """Any message of this module as JSON bytes."""
    return _encoder.encode(message)


@dataclass(frozen=True)
class _Tensor:
    """One decoded input: numbers as a float64 array of ``shape``, or BYTES as a flat
    list of strings."""

    name: str
    datatype: str
    shape: list[int]
    values: np.ndarray | list[str]


_NONE = msgspec.Raw()
_SMALL_JSON = 256
"""Longest raw JSON of a shape or a parameter's value that is decoded at all."""
_OUTPUTS_JSON = 64 * 1024
"""Longest raw JSON of the requested ``outputs`` that is decoded at all."""
_QUOTE, _COMMA = ord('"'), ord(",")
_COUNT_CHUNK = 256 * 1024


class _LazyInput(msgspec.Struct, frozen=True):
    """An input as first read: everything that may be large left as raw JSON."""

    name: str
    datatype: str
    shape: msgspec.Raw = _NONE
    data: msgspec.Raw = _NONE
    parameters: msgspec.Raw = _NONE


class _LazyRequest(msgspec.Struct, frozen=True):
    inputs: list[_LazyInput]
    id: str | None = None
    parameters: msgspec.Raw = _NONE
    outputs: msgspec.Raw = _NONE


class _Parameters(msgspec.Struct):
    """The parameters this gateway reads; any other is skipped unread."""

    timeout: msgspec.Raw = _NONE
    progressive: msgspec.Raw = _NONE
    binary_data_size: msgspec.Raw = _NONE


_lazy_decoder = msgspec.json.Decoder(_LazyRequest)
_parameters_decoder = msgspec.json.Decoder(_Parameters)
_data_decoder = msgspec.json.Decoder(list[float | str | list[float | str]])
_outputs_decoder = msgspec.json.Decoder(list[RequestOutput] | None)
_TOO_LONG = object()


def decode_request(body: bytes | bytearray, model: ModelIO | Sequence[str], max_rows: int,
                   header_length: str | None = None) -> InferCall:
    """Decode and validate an inference request for ``model`` (a :class:`ModelIO`, or the
    names of a binary classifier's ``float32`` features); :class:`BadRequest` says what is
    wrong, naming the feature when a value does not fit it. Every input's shape is checked
    against the model and ``max_rows`` before any ``data`` is decoded."""
    io = model if isinstance(model, ModelIO) else ModelIO.numeric(model)
    json_part, binary = _split_binary(body, header_length)
    try:
        request = _lazy_decoder.decode(json_part)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise BadRequest(f"malformed request: {str(exc)[:300]}") from None
    if request.id is not None and len(request.id) > MAX_ID_LENGTH - ROW_SUFFIX_LENGTH:
        raise BadRequest(f"id longer than {MAX_ID_LENGTH - ROW_SUFFIX_LENGTH} characters")
    heads = _heads(request.inputs, io, max_rows)
    tensors = _tensors(request.inputs, heads, binary)
    rows = _rows(tensors, io, max_rows)
    parameters = _parameters(request.parameters, "parameters")
    outputs = _requested_outputs(request.outputs)
    return InferCall(request.id, rows, _timeout_ms(parameters),
                     _outputs(outputs, io.outputs), _progressive(parameters))


def _absent(raw: msgspec.Raw) -> bool:
    """Whether a field was left out or given as null (without copying a large value)."""
    return not len(raw) or (len(raw) == 4 and bytes(raw) == b"null")


def _small(raw: msgspec.Raw) -> Any:
    """The value of a small piece of raw JSON; :data:`_TOO_LONG` when it is not small."""
    if len(raw) > _SMALL_JSON:
        return _TOO_LONG
    return msgspec.json.decode(raw)


def _parameters(raw: msgspec.Raw, where: str) -> dict[str, Any]:
    """The parameters this gateway reads from ``raw`` (a JSON object, or nothing)."""
    if _absent(raw):
        return {}
    try:
        found = _parameters_decoder.decode(raw)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise BadRequest(f"malformed request: {where}: {str(exc)[:300]}") from None
    return {name: _small(value) for name in _Parameters.__struct_fields__
            if len(value := getattr(found, name))}


def _requested_outputs(raw: msgspec.Raw) -> list[RequestOutput] | None:
    if _absent(raw):
        return None
    if len(raw) > _OUTPUTS_JSON:
        raise BadRequest(f"outputs: more than {_OUTPUTS_JSON} bytes of output names")
    try:
        return _outputs_decoder.decode(raw)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise BadRequest(f"malformed request: outputs: {str(exc)[:300]}") from None


@dataclass(frozen=True)
class _Head:
    """An input's name, datatype and shape, checked before its data is read."""

    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Any]


def _heads(inputs: list[_LazyInput], io: ModelIO, max_rows: int) -> list[_Head]:
    """Every input's datatype and shape checked, its rows within ``max_rows``, and the
    inputs' names a form the model takes: all before any ``data`` is decoded."""
    if not inputs:
        raise BadRequest("no inputs")
    heads: list[_Head] = []
    seen: set[str] = set()
    for tensor in inputs:
        if tensor.name in seen:
            raise BadRequest(f"input {tensor.name!r} given twice")
        seen.add(tensor.name)
        if tensor.datatype not in DATATYPES:
            raise BadRequest(f"input {tensor.name!r}: datatype {tensor.datatype!r}, expected "
                             f"one of {', '.join(DATATYPES)}")
        if _absent(tensor.shape):
            raise BadRequest(f"input {tensor.name!r} has no shape")
        shape = _small(tensor.shape)
        if not (isinstance(shape, list) and shape and len(shape) <= 2
                and all(_is_int(d) and d >= 0 for d in shape)):
            shown = "(too long)" if shape is _TOO_LONG else shape
            raise BadRequest(f"input {tensor.name!r}: shape {shown} is not [N] or [N, F]")
        if not 1 <= shape[0] <= max_rows:
            raise BadRequest(f"{shape[0]} rows; a request carries 1 to {max_rows}")
        width = max(len(io.names), 1)
        if math.prod(shape) > max_rows * width:
            raise BadRequest(f"input {tensor.name!r}: shape {shape}, more values than "
                             f"{max_rows} rows of {width} features")
        heads.append(_Head(tensor.name, tensor.datatype, shape,
                           _parameters(tensor.parameters, f"input {tensor.name!r}")))
    names = set(seen)
    if not (FEATURES_INPUT in names and io.matrix):
        unknown = sorted(names - set(io.names))
        missing = [n for n in io.names if n not in names]
        if unknown or missing:
            raise BadRequest(_form_error(io, unknown, missing))
    elif len(names) != 1:
        raise BadRequest(f"give either {FEATURES_INPUT!r} or one input per feature, not both")
    return heads


def _more_values_than(raw: msgspec.Raw, limit: int) -> bool:
    """Whether the JSON array ``raw`` (flat, or nested one level) holds more than
    ``limit`` values, found without decoding it: its commas outside strings, counted in
    C (escapes removed first, then a quote parity per chunk)."""
    text = bytes(raw)
    if text.count(b",") < limit:
        return False  # even if no comma were inside a string
    if b'"' not in text:
        return True
    if b"\\" in text:  # escaped backslashes, then escaped quotes: every quote left delimits
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    codes = np.frombuffer(text, dtype=np.uint8)
    outside, parity = 0, 0
    for at in range(0, len(codes), _COUNT_CHUNK):
        part = codes[at:at + _COUNT_CHUNK]
        quotes = np.cumsum(part == _QUOTE, dtype=np.uint8)
        inside = (quotes + parity) & 1
        outside += int(np.count_nonzero((part == _COMMA) & (inside == 0)))
        parity = int(inside[-1])
    return outside + 1 > limit


def _split_binary(body: bytes | bytearray,
                  header_length: str | None) -> tuple[bytes | bytearray, memoryview | None]:
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


def _tensors(inputs: list[_LazyInput], heads: list[_Head],
             binary: memoryview | None) -> dict[str, _Tensor]:
    """name -> the input's values; numbers finite (and within FP32 for FP32, whole and
    within int64 for INT64), BYTES valid UTF-8 text. ``data`` is decoded only once its
    values are counted and fit the input's (checked) shape."""
    tensors: dict[str, _Tensor] = {}
    offset = 0
    for tensor, head in zip(inputs, heads, strict=True):
        size = math.prod(head.shape)
        size_param = head.parameters.get("binary_data_size")
        values: np.ndarray | list[str]
        if size_param is not None:
            if binary is None or not _is_int(size_param) or size_param < 0 or (
                    head.datatype != "BYTES"
                    and size_param != _ITEM_BYTES[head.datatype] * size):
                shown = "(too long)" if size_param is _TOO_LONG else repr(size_param)
                raise BadRequest(f"input {head.name!r}: binary_data_size {shown} "
                                 f"does not fit shape {head.shape} of {head.datatype}")
            chunk = binary[offset:offset + size_param]
            if len(chunk) != size_param:
                raise BadRequest(f"input {head.name!r}: body ends before its binary data")
            offset += size_param
            if head.datatype == "BYTES":
                values = _binary_strings(head.name, chunk, size)
            else:
                values = np.frombuffer(chunk, dtype=_NUMPY[head.datatype]).astype(np.float64)
        elif not _absent(tensor.data):
            if _more_values_than(tensor.data, max(size, 1)):
                raise BadRequest(f"input {head.name!r}: more values than its shape "
                                 f"{head.shape} holds")
            try:
                data = _data_decoder.decode(tensor.data)
            except (msgspec.DecodeError, RecursionError) as exc:
                raise BadRequest(f"malformed request: input {head.name!r} data: "
                                 f"{str(exc)[:300]}") from None
            values = _flatten(RequestInput(head.name, head.shape, head.datatype, data), size)
        else:
            raise BadRequest(f"input {head.name!r} has no data")
        if isinstance(values, np.ndarray):
            _check_numbers(head.name, head.datatype, values)
        tensors[head.name] = _Tensor(head.name, head.datatype, head.shape, values)
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


def _binary_strings(name: str, chunk: memoryview, size: int) -> list[str]:
    """The elements of a BYTES tensor in the binary extension: each a 4-byte little-endian
    length, then that many bytes (UTF-8 text here)."""
    strings: list[str] = []
    at = 0
    for _ in range(size):
        if at + 4 > len(chunk):
            raise BadRequest(f"input {name!r}: BYTES data ends before its {size} elements")
        (length,) = struct.unpack_from("<I", chunk, at)
        at += 4
        if at + length > len(chunk):
            raise BadRequest(f"input {name!r}: a BYTES element runs past its data")
        try:
            strings.append(str(chunk[at:at + length], "utf-8"))
        except UnicodeDecodeError:
            raise BadRequest(f"input {name!r}: a BYTES element is not UTF-8 text") from None
        at += length
    if at != len(chunk):
        raise BadRequest(f"input {name!r}: {len(chunk) - at} bytes after its {size} elements")
    return strings


def _flatten(tensor: RequestInput, size: int) -> np.ndarray | list[str]:
    data = tensor.data or []
    flat: list[float | str]
    if any(isinstance(v, list) for v in data):
        if len(tensor.shape) != 2 or len(data) != tensor.shape[0] or not all(
                isinstance(row, list) and len(row) == tensor.shape[1] for row in data):
            raise BadRequest(f"input {tensor.name!r}: nested data does not have "
                             f"shape {tensor.shape}")
        flat = [v for row in data if isinstance(row, list) for v in row]
    else:
        flat = data  # type: ignore[assignment]  # no element is a list
    if len(flat) != size:
        raise BadRequest(f"input {tensor.name!r}: {len(flat)} values for shape {tensor.shape}")
    if tensor.datatype == "BYTES":
        if not set(map(type, flat)) <= {str}:
            raise BadRequest(f"input {tensor.name!r}: BYTES data must be strings")
        return flat  # type: ignore[return-value]  # every element is a str
    # msgspec made every number a float: numpy infers float64 unless a string is among
    # them (then text; a dtype=float64 would have parsed "1.5" as a number)
    values = np.array(flat)
    if values.dtype.kind != "f" and values.size:
        raise BadRequest(f"input {tensor.name!r}: {tensor.datatype} data must be numbers, "
                         "not strings")
    return values.astype(np.float64, copy=False)


def _rows(tensors: dict[str, _Tensor], io: ModelIO, max_rows: int) -> list[list[FeatureValue]]:
    """The rows, in the model's order; the form was checked by :func:`_heads`."""
    if FEATURES_INPUT in tensors and io.matrix:
        rows = _matrix_rows(tensors[FEATURES_INPUT], io)
    else:
        rows = _column_rows(tensors, io)
    if not 1 <= len(rows) <= max_rows:
        raise BadRequest(f"{len(rows)} rows; a request carries 1 to {max_rows}")
    return rows


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


def _matrix_rows(tensor: _Tensor, io: ModelIO) -> list[list[FeatureValue]]:
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


def _column_rows(tensors: dict[str, _Tensor], io: ModelIO) -> list[list[FeatureValue]]:
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


def _outputs(requested: list[RequestOutput] | None,
             available: tuple[str, ...] = OUTPUTS) -> tuple[str, ...]:
    if not requested:
        return available
    names = [o.name for o in requested]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise BadRequest(f"unknown outputs {unknown[:5]}; this model has {list(available)}")
    return tuple(n for n in available if n in names)


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


_BINARY = ModelIO.numeric(())


def response(model_name: str, model_version: str, request_id: str | None,
             results: list[Scored], outputs: tuple[str, ...],
             parameters: dict[str, str | float | bool],
             io: ModelIO = _BINARY) -> InferenceResponse:
    """The answer for ``results`` (one per row, in row order), with ``outputs`` of
    :attr:`ModelIO.outputs`:

    - ``score`` ``[N]``: FP32 for a classifier (its probability), FP64 for a regression
      (the predicted value); a row without a score (``timeout``, ``rejected``) is null
      in JSON, which OIP clients read as NaN.
    - ``label`` ``[N]`` (classifiers only): INT64 when the model's classes are integers,
      a row without a label :data:`NO_LABEL` (-1); BYTES when they are strings, a row
      without a label the empty string (as ``model`` says "" for no model). Should a
      result carry a label the datatype cannot hold (a string among integer classes), the
      answer's ``label`` is BYTES of every label as text, "" for none.
    - ``status`` and ``model`` ``[N]``: BYTES (``model`` "" when no model answered).
    - ``probabilities`` ``[N, K]`` (multiclass only): FP32, column ``k`` the probability
      of class ``io.classes[k]`` (the ``classes`` parameter, a JSON array); a row answered
      without probabilities (``timeout``, ``rejected``, or a model that gave none) and a
      class missing from a row's probabilities are NaN, null in JSON, never 0: a 0 would
      read as a real answer of "impossible".
    """
    n = len(results)
    tensors = []
    for name in outputs:
        if name == "score":
            # JSON has no NaN: a row without a score says null (tritonclient reads NaN).
            tensors.append(ResponseOutput(name, [n], io.score_datatype,
                                          [r.score for r in results]))
        elif name == "label":
            tensors.append(ResponseOutput(name, [n], *_labels(results, io)))
        elif name == "status":
            tensors.append(ResponseOutput(name, [n], "BYTES", [r.status for r in results]))
        elif name == "model":
            tensors.append(ResponseOutput(name, [n], "BYTES", [r.model or "" for r in results]))
        elif name == PROBABILITIES_OUTPUT:
            keys = io.class_keys
            data = [p.get(k) if (p := r.probabilities) is not None else None
                    for r in results for k in keys]
            tensors.append(ResponseOutput(name, [n, len(keys)], "FP32", data))
            parameters = {**parameters, "classes": io.classes_text()}
    return InferenceResponse(model_name, tensors, model_version, request_id, parameters)


def _labels(results: list[Scored], io: ModelIO) -> tuple[str, list[Any]]:
    labels = [r.label for r in results]
    if io.label_datatype == "INT64" and all(
            label is None or label.__class__ is int for label in labels):
        return "INT64", [NO_LABEL if label is None else label for label in labels]
    return "BYTES", ["" if label is None else str(label) for label in labels]
