"""What the gateway answers when a route raises: a :class:`GatewayError` its status, a
Starlette ``HTTPException`` (404, 405) its status, anything else 500; every refused
inference request is counted by its status."""

from __future__ import annotations

import logging
import time

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from rendezvous.gateway.errors import Busy, GatewayError, Unauthorized
from rendezvous.gateway.metrics import REQUESTS
from rendezvous.gateway.responses import error_response

log = logging.getLogger(__name__)

RETRY_AFTER_S = 1
"""``Retry-After`` of every 503."""
UNAVAILABLE = "the pipeline cannot take requests now (Kafka or Redis unavailable); retry later"
"""The body of a 503 for an outage: what Kafka or Redis said is logged, never answered."""


class _Throttled:
    """Logs a repeated warning at most every ``every_s`` seconds, with how many were
    held back: an outage must not write one line per refused request."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self._next = 0.0
        self._held = 0

    def warning(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now < self._next:
            self._held += 1
            return
        held, self._held, self._next = self._held, 0, now + self.every_s
        log.warning(message + (f" (and {held} more like it)" if held else ""), *args)


_unavailable_log = _Throttled()


def _refused(request: Request, status: int) -> None:
    if request.url.path.endswith("/infer"):
        REQUESTS.labels(str(status)).inc()


async def gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    _refused(request, exc.status)
    text = str(exc)
    if exc.status == 503 and not isinstance(exc, Busy):
        # what Kafka or Redis said stays in the log: it names brokers, topics, users
        _unavailable_log.warning("%s %s answered 503: %s", request.method,
                                 request.url.path, text)
        text = UNAVAILABLE
    response = error_response(exc.status, text)
    if isinstance(exc, Unauthorized):
        response.headers["WWW-Authenticate"] = "Bearer"
    if exc.status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    _refused(request, exc.status_code)
    return error_response(exc.status_code, str(exc.detail))


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    _refused(request, 500)
    return error_response(500, "internal error")


EXCEPTION_HANDLERS = {GatewayError: gateway_error, HTTPException: http_error,
                      Exception: server_error}
"""Starlette's ``exception_handlers``: each exception's answer."""
