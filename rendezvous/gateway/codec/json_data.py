"""An input's values given as JSON ``data``: counted before they are decoded, then
flattened row-major (numbers as a float64 array, BYTES as strings)."""

from __future__ import annotations

import msgspec
import numpy as np

from rendezvous.gateway.codec.heads import Head
from rendezvous.gateway.codec.messages import RequestInput
from rendezvous.gateway.errors import BadRequest

_QUOTE, _COMMA = ord('"'), ord(",")
_COUNT_CHUNK = 256 * 1024
_data_decoder = msgspec.json.Decoder(list[float | str | list[float | str]])


def json_values(head: Head, data: msgspec.Raw, size: int) -> np.ndarray | list[str]:
    """The ``size`` values of the input ``head`` from its raw JSON ``data``; decoded only
    once its values are counted and fit the input's (checked) shape."""
    if _more_values_than(data, max(size, 1)):
        raise BadRequest(f"input {head.name!r}: more values than its shape "
                         f"{head.shape} holds")
    try:
        decoded = _data_decoder.decode(data)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise BadRequest(f"malformed request: input {head.name!r} data: "
                         f"{str(exc)[:300]}") from None
    return _flatten(RequestInput(head.name, head.shape, head.datatype, decoded), size)


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
