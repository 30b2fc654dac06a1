"""The gateway's HTTP answers: every body is JSON, every error an :class:`ErrorBody`."""

from __future__ import annotations

import msgspec
from starlette.responses import Response

from rendezvous.gateway.codec import ErrorBody, encode

JSON = "application/json"
BINARY = "application/octet-stream"


def json_response(message: msgspec.Struct, status: int = 200) -> Response:
    return Response(encode(message), status_code=status, media_type=JSON)


def error_response(status: int, text: str) -> Response:
    return json_response(ErrorBody(text), status)
