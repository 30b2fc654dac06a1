"""The middleware in front of every route but the health probes: the ``Host`` must be
one this gateway serves, and a request carrying an ``Origin`` must come from the same
origin or one of ``gateway.cors_origins``."""

from __future__ import annotations

import socket
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from rendezvous.gateway.metrics import REQUESTS
from rendezvous.gateway.responses import error_response

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
WILDCARD_BINDS = ("0.0.0.0", "::", "")
PROBES = "/v2/health/"
"""Routes answered whatever the ``Host``, without a key: load balancers and orchestrators
probe by IP address."""


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
            refusal = error_response(400, f"Host {host_name(host)!r} is not served here "
                                          "(RENDEZVOUS_GATEWAY__ALLOWED_HOSTS)")
        else:
            origin = headers.get("origin")
            if origin is not None and not self._same_or_allowed(origin, host):
                refusal = error_response(403, "cross-origin request refused: its Origin is "
                                              "not in RENDEZVOUS_GATEWAY__CORS_ORIGINS")
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
