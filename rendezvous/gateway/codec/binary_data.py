"""Triton's binary tensor extension: ``Inference-Header-Content-Length`` bytes of JSON,
then each input's raw little-endian bytes in order (a BYTES element: a 4-byte
little-endian length, then its UTF-8 bytes). What tritonclient sends by default."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from rendezvous.gateway.codec.datatypes import ITEM_BYTES, NUMPY_DTYPES, is_int
from rendezvous.gateway.codec.heads import Head
from rendezvous.gateway.codec.raw_request import TOO_LONG
from rendezvous.gateway.errors import BadRequest

BINARY_HEADER = "inference-header-content-length"


def split_binary(body: bytes | bytearray,
                 header_length: str | None) -> tuple[bytes | bytearray, memoryview | None]:
    """The body's JSON part and its binary data (None without the extension's header)."""
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


def binary_values(head: Head, size: int, size_param: Any, binary: memoryview | None,
                  offset: int) -> tuple[np.ndarray | list[str], int]:
    """The ``size`` values of the input ``head`` from its ``binary_data_size`` bytes at
    ``offset`` of the binary data, and the offset of the next input's."""
    if binary is None or not is_int(size_param) or size_param < 0 or (
            head.datatype != "BYTES"
            and size_param != ITEM_BYTES[head.datatype] * size):
        shown = "(too long)" if size_param is TOO_LONG else repr(size_param)
        raise BadRequest(f"input {head.name!r}: binary_data_size {shown} "
                         f"does not fit shape {head.shape} of {head.datatype}")
    chunk = binary[offset:offset + size_param]
    if len(chunk) != size_param:
        raise BadRequest(f"input {head.name!r}: body ends before its binary data")
    offset += size_param
    if head.datatype == "BYTES":
        return _binary_strings(head.name, chunk, size), offset
    return np.frombuffer(chunk, dtype=NUMPY_DTYPES[head.datatype]).astype(np.float64), offset


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
