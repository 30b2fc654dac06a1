"""Who may call a route: anyone (the health probes), a caller with an API key, or a
caller with an API key asking for the model this gateway serves."""

from __future__ import annotations

import enum
import hmac
from collections.abc import Awaitable, Callable

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response

from rendezvous.gateway.errors import Unauthorized
from rendezvous.gateway.service import Gateway

Handler = Callable[[Request], Awaitable[Response]]


class Access(enum.Enum):
    OPEN = "open"
    """No key needed."""
    KEY = "key"
    """One of ``gateway.api_keys`` (when any is set): ``Authorization: Bearer <key>``."""
    MODEL = "model"
    """A key, and the route's ``model_name`` (and ``model_version``) this gateway's."""


class Keys:
    """The API keys a request must carry one of; none set: every request may pass."""

    def __init__(self, keys: list[SecretStr]) -> None:
        self._keys = [key.get_secret_value().encode() for key in keys]

    def check(self, request: Request) -> None:
        if not self._keys:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = token.strip().encode()
        # compare_digest with every key: no early exit that tells which key was close
        matches = [hmac.compare_digest(given, key) for key in self._keys]
        if scheme.lower() != "bearer" or not any(matches):
            raise Unauthorized("a valid API key is required: Authorization: Bearer <key>")


def with_access(handler: Handler, access: Access, keys: Keys, gateway: Gateway) -> Handler:
    """``handler``, called only once the request passes ``access``."""
    if access is Access.OPEN:
        return handler

    async def checked(request: Request) -> Response:
        keys.check(request)
        if access is Access.MODEL:
            params = request.path_params
            gateway.check_model(params["model_name"], params.get("model_version"))
        return await handler(request)

    return checked
