"""The gateway's Prometheus series, served at ``/metrics`` on its own HTTP port.

``rendezvous status`` reads them like any component's: rows answered (processed),
requests refused (invalid), rows waiting for their result (lag) and the p99 of one
request's time in the gateway (batch).
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from rendezvous.metrics import BATCH_BUCKETS

REQUESTS = Counter("rendezvous_gateway_requests", "Inference requests answered, by HTTP status.",
                   ["code"])
ROWS = Counter("rendezvous_gateway_rows", "Rows answered, by result status.", ["status"])
TIMEOUTS_AT_GATEWAY = Counter(
    "rendezvous_gateway_timeouts_at_gateway",
    "Rows the gateway answered `timeout` itself: no result reached it by the deadline + slack.")
PENDING = Gauge("rendezvous_gateway_pending_rows", "Rows sent into the pipeline, not answered yet.")
IN_FLIGHT = Gauge("rendezvous_gateway_requests_in_flight",
                  "Inference requests in the gateway now (reading, waiting for results).")
BODY_BYTES = Gauge("rendezvous_gateway_body_bytes",
                   "Bytes of large request bodies admitted and not yet answered.")
BUSY = Counter("rendezvous_gateway_busy",
               "Requests answered 503 + Retry-After before their body was read: too many "
               "requests in the gateway (requests) or too many bytes of large bodies "
               "(body_memory).", ["limit"])
REQUEST_SECONDS = Histogram("rendezvous_gateway_request_seconds",
                            "Time of one inference request inside the gateway.",
                            buckets=BATCH_BUCKETS)


def exposition() -> tuple[bytes, str]:
    """The body and content type of ``GET /metrics``."""
    return generate_latest(), CONTENT_TYPE_LATEST
