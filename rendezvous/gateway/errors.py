"""Errors of the gateway, each with the HTTP status it is answered with."""

from __future__ import annotations

from rendezvous.errors import RendezvousError


class GatewayError(RendezvousError):
    """Base of the gateway's errors; ``status`` is the HTTP status of the answer."""

    status = 500


class BadRequest(GatewayError, ValueError):
    """The request is malformed or does not fit the model: nothing reaches Kafka."""

    status = 400


class Unauthorized(GatewayError):
    """API keys are configured and the request carries none of them."""

    status = 401


class Unavailable(GatewayError):
    """Kafka or Redis cannot be reached (or the producer's queue is full)."""

    status = 503


class Busy(Unavailable):
    """More requests (or large bodies) in the gateway than its limits allow: retry later."""


class UnsupportedMediaType(GatewayError):
    """An inference request whose ``Content-Type`` is neither JSON nor binary."""

    status = 415
