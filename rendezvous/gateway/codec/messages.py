"""The messages of the Open Inference Protocol v2 (REST) this gateway reads and writes,
and what a validated inference request becomes (:class:`InferCall`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from rendezvous.messages import FeatureValue


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


def encode(message: msgspec.Struct) -> bytes:
    """Any message of this module as JSON bytes."""
    return _encoder.encode(message)
