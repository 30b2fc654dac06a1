"""How many inference requests the gateway holds at once, and how many bytes of large
bodies: beyond either limit a request is refused (503, retry later) before its body is
read."""

from __future__ import annotations

from rendezvous.gateway.errors import BadRequest, Busy
from rendezvous.gateway.metrics import BODY_BYTES, BUSY, IN_FLIGHT

MAX_BODY_BYTES = 16 * 1024 * 1024
LARGE_BODY_BYTES = 1024 * 1024
"""A body above this (or of unknown length) is admitted only within
``gateway.max_body_memory``; smaller ones only count against ``gateway.max_concurrent``."""


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
