"""The gateway's ASGI app: its route table (method, path, handler, who may call it), the
middleware in front of every route, the answers to errors, and a lifespan that starts
and stops the :class:`~rendezvous.gateway.service.Gateway`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route

from rendezvous.gateway.access import Access, Handler, Keys, with_access
from rendezvous.gateway.endpoints import Endpoints
from rendezvous.gateway.error_handlers import EXCEPTION_HANDLERS
from rendezvous.gateway.guard import Guard, default_hosts
from rendezvous.gateway.service import Gateway

MODEL = "/v2/models/{model_name}"
MODEL_VERSION = "/v2/models/{model_name}/versions/{model_version}"
CORS_HEADERS = ["Authorization", "Content-Type", "X-Deadline-Ms",
                "Inference-Header-Content-Length"]
"""Request headers a page of ``gateway.cors_origins`` may send."""
RouteRow = tuple[str, str, Handler, Access]
"""(method, path, handler, who may call it)."""


def route_table(endpoints: Endpoints, metrics: Access) -> list[RouteRow]:
    """Every route: (method, path, handler, who may call it); ``metrics`` is who may
    read ``/metrics`` (anyone with ``gateway.metrics_public``, else a key). A model's
    ``ready`` is the pipeline's: the gateway serves one model."""
    table: list[RouteRow] = [
        ("GET", "/v2/health/live", endpoints.live, Access.OPEN),
        ("GET", "/v2/health/ready", endpoints.ready, Access.OPEN),
        ("GET", "/v2", endpoints.server_metadata, Access.KEY),
        ("GET", "/openapi.json", endpoints.openapi_json, Access.KEY),
        ("GET", "/metrics", endpoints.metrics, metrics),
    ]
    for base in (MODEL, MODEL_VERSION):
        table += [
            ("GET", base, endpoints.model_metadata, Access.MODEL),
            ("GET", f"{base}/ready", endpoints.ready, Access.MODEL),
            ("POST", f"{base}/infer", endpoints.infer, Access.MODEL),
        ]
    return table


def create_app(gateway: Gateway) -> Starlette:
    """The ASGI app of ``gateway``; its lifespan starts and stops the gateway."""
    config = gateway.config
    keys = Keys(config.api_keys)
    metrics = Access.OPEN if config.metrics_public else Access.KEY
    routes = [Route(path, with_access(handler, access, keys, gateway), methods=[method])
              for method, path, handler, access in route_table(Endpoints(gateway), metrics)]

    hosts = config.allowed_hosts if config.allowed_hosts is not None else default_hosts(
        config.host)
    middleware = [Middleware(Guard, hosts=hosts, origins=config.cors_origins)]
    if config.cors_origins:
        middleware.append(Middleware(
            CORSMiddleware, allow_origins=config.cors_origins, allow_methods=["GET", "POST"],
            allow_headers=CORS_HEADERS, max_age=600))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    return Starlette(routes=routes, lifespan=lifespan, middleware=middleware,
                     exception_handlers=EXCEPTION_HANDLERS)
