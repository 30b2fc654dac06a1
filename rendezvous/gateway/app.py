"""The HTTP routes of the Open Inference Protocol v2 (REST), and the server that runs them.

Server: uvicorn with uvloop + httptools. Measured here on one Starlette route
decoding a 30-feature FP32 request (sequential keep-alive requests, p50 / p99,
then 8 concurrent connections): uvicorn uvloop+httptools 206-395 / 349-643 us,
~3,000-5,900 req/s; granian (uvloop) 218-619 / 428-2,012 us, ~3,400 req/s;
uvicorn asyncio+h11 482 / 803 us, 2,400 req/s; hypercorn 588 / 1,391 us,
2,700 req/s. uvicorn and granian tie within the noise; uvicorn runs in this
process, so the reply channel and the producer thread live beside the routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import signal
import socket
import time
from collections.abc import AsyncIterator, Iterable

import msgspec
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from rendezvous.gateway.codec import (
    BINARY_HEADER,
    ErrorBody,
    choose_deadline,
    decode_request,
    encode,
    parse_deadline_header,
)
from rendezvous.gateway.errors import BadRequest, GatewayError, Unauthorized, Unavailable
from rendezvous.gateway.metrics import BODY_BYTES, BUSY, IN_FLIGHT, REQUESTS, exposition
from rendezvous.gateway.openapi import document
from rendezvous.gateway.service import Gateway
from rendezvous.process import watch_gc
from rendezvous.readiness import announce_ready
from rendezvous.settings import Settings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024
LARGE_BODY_BYTES = 1024 * 1024
"""A body above this (or of unknown length) is admitted only within
``gateway.max_body_memory``; smaller ones only count against ``gateway.max_concurrent``."""
RETRY_AFTER_S = 1
"""``Retry-After`` of every 503."""
UNAVAILABLE = "the pipeline cannot take requests now (Kafka or Redis unavailable); retry later"
"""The body of a 503 for an outage: what Kafka or Redis said is logged, never answered."""
JSON = "application/json"
BINARY = "application/octet-stream"
ACCEPTED_TYPES = (JSON, BINARY)
"""Content-Types of an inference request (none at all is accepted too: tritonclient sends
none, JSON or binary). A browser may send ``text/plain``, a form type or ``multipart``
across origins without asking first; none of them is accepted."""
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
WILDCARD_BINDS = ("0.0.0.0", "::", "")
PROBES = "/v2/health/"
"""Routes answered whatever the ``Host``, without a key: load balancers and orchestrators
probe by IP address."""


class Busy(Unavailable):
    """More requests (or large bodies) in the gateway than its limits allow: retry later."""


class Forbidden(GatewayError):
    """A cross-origin request from a web page not allowed by ``gateway.cors_origins``."""

    status = 403


class UnsupportedMediaType(GatewayError):
    status = 415


class Admission:
    """How many inference requests are in the gateway, and how many bytes of large bodies
    they hold; beyond either limit a request is refused before its body is read. One
    event loop runs every route, so plain counters suffice."""

    def __init__(self, max_concurrent: int, max_body_memory: int) -> None:
        self.max_concurrent = max_concurrent
        self.max_body_memory = max_body_memory
        self.requests = 0
        self.body_bytes = 0

    def enter(self, content_length: str | None) -> int:
        """Admit one request; the body bytes reserved for it (0 for a small body)."""
        declared = int(content_length) if content_length and content_length.isdigit() else None
        if declared is not None and declared > MAX_BODY_BYTES:
            raise BadRequest(f"body larger than {MAX_BODY_BYTES} bytes")
        if self.requests >= self.max_concurrent:
            BUSY.labels("requests").inc()
            raise Busy(f"the gateway is busy ({self.requests} requests in it); retry later")
        reserved = MAX_BODY_BYTES if declared is None else declared
        if reserved <= LARGE_BODY_BYTES:
            reserved = 0
        elif self.body_bytes + reserved > self.max_body_memory:
            BUSY.labels("body_memory").inc()
            raise Busy("the gateway is busy with large requests; retry later")
        self.requests += 1
        self.body_bytes += reserved
        IN_FLIGHT.set(self.requests)
        BODY_BYTES.set(self.body_bytes)
        return reserved

    def leave(self, reserved: int) -> None:
        self.requests -= 1
        self.body_bytes -= reserved
        IN_FLIGHT.set(self.requests)
        BODY_BYTES.set(self.body_bytes)


def default_hosts(bind: str) -> list[str]:
    """The ``Host`` names answered when ``gateway.allowed_hosts`` is unset: the bind
    address and this machine's loopback names; with a wildcard bind also its host name."""
    hosts = [bind, *LOCAL_HOSTS]
    if bind in WILDCARD_BINDS:
        hosts += [socket.gethostname(), socket.getfqdn()]
    return [h for h in dict.fromkeys(hosts) if h and h not in WILDCARD_BINDS]


def host_name(header: str) -> str:
    """The host of a ``Host`` header, without its port (``[::1]:8000`` -> ``::1``)."""
    text = header.strip().lower()
    if text.startswith("["):
        return text[1:text.find("]")] if "]" in text else text
    if text.count(":") == 1:
        text = text.split(":", 1)[0]
    return text.rstrip(".")


def host_allowed(header: str, allowed: Iterable[str]) -> bool:
    host = host_name(header)
    for pattern in allowed:
        pattern = pattern.strip().lower().rstrip(".")
        if pattern == "*" or host == pattern or (
                pattern.startswith("*.") and host.endswith(pattern[1:])):
            return True
    return False


class Guard:
    """ASGI middleware in front of every route but the probes: the ``Host`` must be one
    this gateway serves (DNS rebinding: a web page's own name pointed at this address
    would otherwise reach it as a same-origin peer), and a request carrying an ``Origin``
    must come from the same origin or one of ``cors_origins`` (browsers send ``Origin``
    on every cross-origin request and every POST: this refuses what a web page sends
    without asking first)."""

    def __init__(self, app: ASGIApp, hosts: list[str], origins: list[str]) -> None:
        self.app = app
        self.hosts = hosts
        self.origins = {o.rstrip("/").lower() for o in origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(PROBES):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        refusal: Response | None = None
        if not host_allowed(host, self.hosts):
            refusal = _error(400, f"Host {host_name(host)!r} is not served here "
                                  "(RENDEZVOUS_GATEWAY__ALLOWED_HOSTS)")
        else:
            origin = headers.get("origin")
            if origin is not None and not self._same_or_allowed(origin, host):
                refusal = _error(403, "cross-origin request refused: its Origin is not in "
                                      "RENDEZVOUS_GATEWAY__CORS_ORIGINS")
        if refusal is not None:
            if scope["path"].endswith("/infer"):
                REQUESTS.labels(str(refusal.status_code)).inc()
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _same_or_allowed(self, origin: str, host: str) -> bool:
        origin = origin.strip().rstrip("/").lower()
        return origin in self.origins or origin in (f"http://{host.lower()}",
                                                    f"https://{host.lower()}")


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


def _json(message: msgspec.Struct, status: int = 200) -> Response:
    return Response(encode(message), status_code=status, media_type=JSON)


def _error(status: int, text: str) -> Response:
    return _json(ErrorBody(text), status)


def create_app(gateway: Gateway) -> Starlette:
    """The ASGI app of ``gateway``; its lifespan starts and stops the gateway."""
    config = gateway.config
    keys = [key.get_secret_value().encode() for key in config.api_keys]
    admission = Admission(config.max_concurrent, config.max_body_memory)
    openapi = msgspec.json.encode(document(f"rendezvous gateway: {gateway.config.model_name}",
                                           gateway.server_metadata().version, bool(keys),
                                           (gateway.config.model_name, gateway.manifest.version),
                                           gateway.example_request(), gateway.model_metadata()))

    def authorize(request: Request) -> None:
        if not keys:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = token.strip().encode()
        # compare_digest with every key: no early exit that tells which key was close
        matches = [hmac.compare_digest(given, key) for key in keys]
        if scheme.lower() != "bearer" or not any(matches):
            raise Unauthorized("a valid API key is required: Authorization: Bearer <key>")

    def model(request: Request) -> None:
        authorize(request)
        params = request.path_params
        gateway.check_model(params["model_name"], params.get("model_version"))

    async def live(request: Request) -> Response:
        return Response(status_code=200)

    async def ready(request: Request) -> Response:
        reason = gateway.not_ready()
        return _error(503, reason) if reason else Response(status_code=200)

    async def server_metadata(request: Request) -> Response:
        authorize(request)
        return _json(gateway.server_metadata())

    async def model_metadata(request: Request) -> Response:
        model(request)
        return _json(gateway.model_metadata())

    async def model_ready(request: Request) -> Response:
        model(request)
        return await ready(request)

    async def infer(request: Request) -> Response:
        model(request)
        _check_content_type(request.headers.get("content-type"))
        reserved = admission.enter(request.headers.get("content-length"))
        try:
            body = await _body(request)
            call = decode_request(body, gateway.io, config.max_rows,
                                  request.headers.get(BINARY_HEADER))
            del body  # the rows are decoded: the bytes may go before the wait
            deadline_ms = choose_deadline(
                call.timeout_ms, parse_deadline_header(request.headers.get("x-deadline-ms")),
                gateway.default_deadline_ms, config.max_deadline_ms)
            answer = _json(await gateway.infer(call, deadline_ms))
        finally:
            admission.leave(reserved)
        REQUESTS.labels("200").inc()
        return answer

    async def openapi_json(request: Request) -> Response:
        authorize(request)
        return Response(openapi, media_type=JSON)

    async def metrics(request: Request) -> Response:
        if not config.metrics_public:
            authorize(request)
        body, content_type = exposition()
        return Response(body, media_type=content_type)

    routes = [
        Route("/v2/health/live", live),
        Route("/v2/health/ready", ready),
        Route("/v2", server_metadata),
        Route("/openapi.json", openapi_json),
        Route("/metrics", metrics),
    ]
    for base in ("/v2/models/{model_name}", "/v2/models/{model_name}/versions/{model_version}"):
        routes += [Route(base, model_metadata), Route(f"{base}/ready", model_ready),
                   Route(f"{base}/infer", infer, methods=["POST"])]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    def refused(request: Request, status: int) -> None:
        if request.url.path.endswith("/infer"):
            REQUESTS.labels(str(status)).inc()

    async def gateway_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GatewayError)
        refused(request, exc.status)
        text = str(exc)
        if exc.status == 503 and not isinstance(exc, Busy):
            # what Kafka or Redis said stays in the log: it names brokers, topics, users
            _unavailable_log.warning("%s %s answered 503: %s", request.method,
                                     request.url.path, text)
            text = UNAVAILABLE
        response = _error(exc.status, text)
        if isinstance(exc, Unauthorized):
            response.headers["WWW-Authenticate"] = "Bearer"
        if exc.status == 503:
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        refused(request, exc.status_code)
        return _error(exc.status_code, str(exc.detail))

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        refused(request, 500)
        return _error(500, "internal error")

    hosts = config.allowed_hosts if config.allowed_hosts is not None else default_hosts(
        config.host)
    middleware = [Middleware(Guard, hosts=hosts, origins=config.cors_origins)]
    if config.cors_origins:
        middleware.append(Middleware(
            CORSMiddleware, allow_origins=config.cors_origins, allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Deadline-Ms",
                           "Inference-Header-Content-Length"], max_age=600))
    return Starlette(routes=routes, lifespan=lifespan, middleware=middleware,
                     exception_handlers={GatewayError: gateway_error, HTTPException: http_error,
                                         Exception: server_error})


def _check_content_type(value: str | None) -> None:
    """An inference request is JSON or Triton's binary extension, or says nothing."""
    if value is None:
        return
    media = value.split(";", 1)[0].strip().lower()
    if media not in ACCEPTED_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {media or value!r} is not accepted: send {JSON} (curl: -H "
            f"'Content-Type: {JSON}'), or {BINARY} with Inference-Header-Content-Length")


async def _body(request: Request) -> bytearray:
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


def run(settings: Settings, access_log: bool = False) -> None:
    """Serve the gateway until SIGTERM/SIGINT; the ready line carries the real URL."""
    import uvicorn

    config = settings.gateway
    watch_gc()
    gateway = Gateway.create(settings)
    server = uvicorn.Server(uvicorn.Config(
        create_app(gateway), host=config.host, port=config.port, loop="uvloop",
        http="httptools", lifespan="on", access_log=access_log, log_config=None))

    async def main() -> None:
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():
            await asyncio.sleep(0.05)
        while gateway.not_ready() and not serving.done():
            await asyncio.sleep(0.05)
        if not serving.done():
            host, port = server.servers[0].sockets[0].getsockname()[:2]
            # port= is what supervisors read to find /metrics, as for every component
            announce_ready("gateway", f"http://{host}:{port} port={port} "
                                      f"reply_to={gateway.reply_to}")
        await serving

    import uvloop

    # uvicorn handles SIGTERM/SIGINT while it serves and raises the signal again once it
    # has drained; with these handlers that second one is a no-op (exit status 0, no
    # traceback), and a signal before serving starts still stops it.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: server.handle_exit(signum, frame))
    uvloop.run(main())
