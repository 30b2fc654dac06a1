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
from collections.abc import AsyncIterator

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rendezvous.gateway.codec import (
    BINARY_HEADER,
    ErrorBody,
    choose_deadline,
    decode_request,
    encode,
    parse_deadline_header,
)
from rendezvous.gateway.errors import BadRequest, GatewayError, Unauthorized
from rendezvous.gateway.metrics import REQUESTS, exposition
from rendezvous.gateway.openapi import document
from rendezvous.gateway.service import Gateway
from rendezvous.process import watch_gc
from rendezvous.readiness import announce_ready
from rendezvous.settings import Settings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024
JSON = "application/json"


def _json(message: msgspec.Struct, status: int = 200) -> Response:
    return Response(encode(message), status_code=status, media_type=JSON)


def _error(status: int, text: str) -> Response:
    return _json(ErrorBody(text), status)


def create_app(gateway: Gateway) -> Starlette:
    """The ASGI app of ``gateway``; its lifespan starts and stops the gateway."""
    keys = [key.get_secret_value().encode() for key in gateway.config.api_keys]
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
        body = await _body(request)
        call = decode_request(body, gateway.io, gateway.config.max_rows,
                              request.headers.get(BINARY_HEADER))
        deadline_ms = choose_deadline(call.timeout_ms,
                                      parse_deadline_header(request.headers.get("x-deadline-ms")),
                                      gateway.default_deadline_ms, gateway.config.max_deadline_ms)
        answer = _json(await gateway.infer(call, deadline_ms))
        REQUESTS.labels("200").inc()
        return answer

    async def openapi_json(request: Request) -> Response:
        return Response(openapi, media_type=JSON)

    async def metrics(request: Request) -> Response:
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
        response = _error(exc.status, str(exc))
        if isinstance(exc, Unauthorized):
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        refused(request, exc.status_code)
        return _error(exc.status_code, str(exc.detail))

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        refused(request, 500)
        return _error(500, "internal error")

    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={
        GatewayError: gateway_error, HTTPException: http_error, Exception: server_error})


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BadRequest(f"body larger than {MAX_BODY_BYTES} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BadRequest(f"body larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


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
