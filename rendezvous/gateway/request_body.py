"""The body of an inference request: its ``Content-Type``, and reading it within
:data:`~rendezvous.gateway.admission.MAX_BODY_BYTES`."""

from __future__ import annotations

from starlette.requests import Request

from rendezvous.gateway.admission import MAX_BODY_BYTES
from rendezvous.gateway.errors import BadRequest, UnsupportedMediaType
from rendezvous.gateway.responses import BINARY, JSON

ACCEPTED_TYPES = (JSON, BINARY)
"""Content-Types of an inference request (none at all is accepted too: tritonclient sends
none, JSON or binary). A browser may send ``text/plain``, a form type or ``multipart``
across origins without asking first; none of them is accepted."""


def check_content_type(value: str | None) -> None:
    """An inference request is JSON or Triton's binary extension, or says nothing."""
    if value is None:
        return
    media = value.split(";", 1)[0].strip().lower()
    if media not in ACCEPTED_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {media or value!r} is not accepted: send {JSON} (curl: -H "
            f"'Content-Type: {JSON}'), or {BINARY} with Inference-Header-Content-Length")


async def read_body(request: Request) -> bytearray:
    """The body, at most :data:`MAX_BODY_BYTES`, read into one buffer of its declared
    length (no list of chunks joined into a second copy)."""
    declared = request.headers.get("content-length")
    size = int(declared) if declared and declared.isdigit() else None
    if size is not None and size > MAX_BODY_BYTES:
        raise BadRequest(f"body larger than {MAX_BODY_BYTES} bytes")
    if size is None:  # no length declared: read it growing, within the limit
        return await _unsized_body(request)
    body = bytearray(size)
    at = 0
    with memoryview(body) as view:
        async for chunk in request.stream():
            if at + len(chunk) > size:  # the server never passes more than declared
                raise BadRequest("body longer than its Content-Length")
            view[at:at + len(chunk)] = chunk
            at += len(chunk)
    del body[at:]
    return body


async def _unsized_body(request: Request) -> bytearray:
    body = bytearray()
    async for chunk in request.stream():
        if len(body) + len(chunk) > MAX_BODY_BYTES:
            raise BadRequest(f"body larger than {MAX_BODY_BYTES} bytes")
        body += chunk
    return body
