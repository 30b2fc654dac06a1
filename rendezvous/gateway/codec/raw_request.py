"""An inference request as first read: every part that may be large (a tensor's
``data``, shapes, parameters, the requested outputs) is left as raw JSON, to be decoded
only once it is known to be small enough for the model and ``max_rows``."""

from __future__ import annotations

from typing import Any

import msgspec

from rendezvous.gateway.codec.messages import RequestOutput
from rendezvous.gateway.errors import BadRequest

_NONE = msgspec.Raw()
SMALL_JSON = 256
"""Longest raw JSON of a shape or a parameter's value that is decoded at all."""
OUTPUTS_JSON = 64 * 1024
"""Longest raw JSON of the requested ``outputs`` that is decoded at all."""
TOO_LONG = object()
"""What :func:`small` gives for raw JSON longer than :data:`SMALL_JSON`."""


class RawInput(msgspec.Struct, frozen=True):
    """An input as first read: everything that may be large left as raw JSON."""

    name: str
    datatype: str
    shape: msgspec.Raw = _NONE
    data: msgspec.Raw = _NONE
    parameters: msgspec.Raw = _NONE


class RawRequest(msgspec.Struct, frozen=True):
    inputs: list[RawInput]
    id: str | None = None
    parameters: msgspec.Raw = _NONE
    outputs: msgspec.Raw = _NONE


class _Parameters(msgspec.Struct):
    """The parameters this gateway reads; any other is skipped unread."""

    timeout: msgspec.Raw = _NONE
    progressive: msgspec.Raw = _NONE
    binary_data_size: msgspec.Raw = _NONE


_request_decoder = msgspec.json.Decoder(RawRequest)
_parameters_decoder = msgspec.json.Decoder(_Parameters)
_outputs_decoder = msgspec.json.Decoder(list[RequestOutput] | None)


def read_raw_request(json_part: bytes | bytearray) -> RawRequest:
    """The request's JSON, its large parts left raw; :class:`BadRequest` if malformed."""
    try:
        return _request_decoder.decode(json_part)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise BadRequest(f"malformed request: {str(exc)[:300]}") from None


def absent(raw: msgspec.Raw) -> bool:
    """Whether a field was left out or given as null (without copying a large value)."""
    return not len(raw) or (len(raw) == 4 and bytes(raw) == b"null")


def small(raw: msgspec.Raw) -> Any:
    """The value of a small piece of raw JSON; :data:`TOO_LONG` when it is not small."""
    if len(raw) > SMALL_JSON:
        return TOO_LONG
    return msgspec.json.decode(raw)


def read_parameters(raw: msgspec.Raw, where: str) -> dict[str, Any]:
    """The parameters this gateway reads from ``raw`` (a JSON object, or nothing)."""
    if absent(raw):
        return {}
    try:
        found = _parameters_decoder.decode(raw)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise BadRequest(f"malformed request: {where}: {str(exc)[:300]}") from None
    return {name: small(value) for name in _Parameters.__struct_fields__
            if len(value := getattr(found, name))}


def read_requested_outputs(raw: msgspec.Raw) -> list[RequestOutput] | None:
    """The outputs the request names, or None when it names none."""
    if absent(raw):
        return None
    if len(raw) > OUTPUTS_JSON:
        raise BadRequest(f"outputs: more than {OUTPUTS_JSON} bytes of output names")
    try:
        return _outputs_decoder.decode(raw)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise BadRequest(f"malformed request: outputs: {str(exc)[:300]}") from None
