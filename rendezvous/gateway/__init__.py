"""The HTTP gateway: Open Inference Protocol v2 (REST) in front of the pipeline.

Each row of an inference request becomes one input event carrying this
process's Redis return address; the answer comes by the request's deadline
plus a small slack, rows still unanswered then say ``timeout``.

- :mod:`~rendezvous.gateway.codec`: OIP messages, request validation, the answer
- :mod:`~rendezvous.gateway.pending`: rows waiting for results, the reply listener
- :mod:`~rendezvous.gateway.upstream`: the producer, Kafka health, the live deadline
- :mod:`~rendezvous.gateway.service`: the transport-free core the routes call
- :mod:`~rendezvous.gateway.app`: routes, API keys, the OpenAPI document, the server
"""

from rendezvous.gateway.app import create_app, run
from rendezvous.gateway.service import Gateway

__all__ = ["Gateway", "create_app", "run"]
