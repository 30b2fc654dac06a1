"""The handlers of the gateway's routes: the HTTP side of each call (headers, body,
status), the work itself done by the transport-free
:class:`~rendezvous.gateway.service.Gateway`. Who may call which is the route table's
(:mod:`~rendezvous.gateway.app`)."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from rendezvous.gateway.admission import Admission
from rendezvous.gateway.codec import (
    BINARY_HEADER,
    choose_deadline,
    decode_request,
    parse_deadline_header,
)
from rendezvous.gateway.metrics import REQUESTS, exposition
from rendezvous.gateway.openapi import document
from rendezvous.gateway.request_body import check_content_type, read_body
from rendezvous.gateway.responses import JSON, error_response, json_response
from rendezvous.gateway.service import Gateway


class Endpoints:
    """One handler per route of the Open Inference Protocol v2 (REST), plus the OpenAPI
    document and the Prometheus metrics."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        config = gateway.config
        self.admission = Admission(config.max_concurrent, config.max_body_memory)
        self.openapi = msgspec.json.encode(document(
            f"rendezvous gateway: {config.model_name}", gateway.server_metadata().version,
            bool(config.api_keys), (config.model_name, gateway.manifest.version),
            gateway.example_request(), gateway.model_metadata()))

    async def live(self, request: Request) -> Response:
        return Response(status_code=200)

    async def ready(self, request: Request) -> Response:
        reason = self.gateway.not_ready()
        return error_response(503, reason) if reason else Response(status_code=200)

    async def server_metadata(self, request: Request) -> Response:
        return json_response(self.gateway.server_metadata())

    async def model_metadata(self, request: Request) -> Response:
        return json_response(self.gateway.model_metadata())

    async def infer(self, request: Request) -> Response:
        gateway, config = self.gateway, self.gateway.config
        check_content_type(request.headers.get("content-type"))
        reserved = self.admission.enter(request.headers.get("content-length"))
        try:
            body = await read_body(request)
            call = decode_request(body, gateway.io, config.max_rows,
                                  request.headers.get(BINARY_HEADER))
            del body  # the rows are decoded: the bytes may go before the wait
            deadline_ms = choose_deadline(
                call.timeout_ms, parse_deadline_header(request.headers.get("x-deadline-ms")),
                gateway.default_deadline_ms, config.max_deadline_ms)
            answer = json_response(await gateway.infer(call, deadline_ms))
        finally:
            self.admission.leave(reserved)
        REQUESTS.labels("200").inc()
        return answer

    async def openapi_json(self, request: Request) -> Response:
        return Response(self.openapi, media_type=JSON)

    async def metrics(self, request: Request) -> Response:
        body, content_type = exposition()
        return Response(body, media_type=content_type)
