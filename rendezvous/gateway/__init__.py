"""The HTTP gateway: Open Inference Protocol v2 (REST) in front of the pipeline.

Each row of an inference request becomes one input event carrying this
process's Redis return address; the answer comes by the request's deadline
plus a small slack, rows still unanswered then say ``timeout``.

- :mod:`~rendezvous.gateway.codec`: OIP messages, request validation, the answer
- :mod:`~rendezvous.gateway.pending`: rows waiting for results, the reply listener
- :mod:`~rendezvous.gateway.upstream`: the producer, Kafka health, the live deadline
- :mod:`~rendezvous.gateway.service`: the transport-free core the routes call
- :mod:`~rendezvous.gateway.app`: the route table, the middleware, the answers to errors
- :mod:`~rendezvous.gateway.endpoints`: the routes' handlers
- :mod:`~rendezvous.gateway.access`, :mod:`~rendezvous.gateway.guard`: API keys; the
  ``Host`` and ``Origin`` checks
- :mod:`~rendezvous.gateway.admission`, :mod:`~rendezvous.gateway.request_body`: the
  limits on requests in the gateway, and reading a body within them
- :mod:`~rendezvous.gateway.openapi`: the OpenAPI document
- :mod:`~rendezvous.gateway.server`: the server that runs the app
"""

from rendezvous.gateway.app import create_app
from rendezvous.gateway.server import run
from rendezvous.gateway.service import Gateway

__all__ = ["Gateway", "create_app", "run"]
