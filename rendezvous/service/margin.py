"""How long before a request's deadline the rendezvous must decide it.

A result decided exactly at the deadline reaches its reader one Kafka hop
later: late. The margin is that hop: this process's own output path, measured
(decision to broker acknowledgement, p99 of the recent results), plus the
reader's side, ``reader_ms``: a consumer built from this deployment's settings
gets a new record when its fetch returns, and with ``fetch_min_bytes`` not yet
reached that is up to ``fetch_wait_max_ms`` after the append (measured: with
1 ms assumed for it, half of the results decided at their margin arrived late).
A request with a return address is different: its caller waits on Redis, and
its reply goes out once serve has seen the result acknowledged (which the
measured path includes), one Redis round trip (``REPLY_MS``) later; no fetch.
Each sum is kept within ``[min_ms, max_ms]`` so one slow moment cannot eat a
request's whole budget.
"""

from __future__ import annotations

REPLY_MS = 1.0
"""The Redis round trip of a reply, after its result was acknowledged."""


class DeliveryMargin:
    """The current margins in ms (both start at ``max_ms`` until something is measured):
    ``ms`` for results read from Kafka, ``replied_ms`` for replies to a return address."""

    __slots__ = ("max_ms", "min_ms", "ms", "reader_ms", "replied_ms")

    def __init__(self, min_ms: float, max_ms: float, reader_ms: float = 0.0) -> None:
        if not 0.0 <= min_ms <= max_ms:
            raise ValueError(f"need 0 <= margin_min_ms <= margin_max_ms, got {min_ms}, {max_ms}")
        self.min_ms, self.max_ms, self.reader_ms = min_ms, max_ms, reader_ms
        self.ms = self.replied_ms = max_ms

    def update(self, output_p99_ms: float | None) -> None:
        """Follow the measured output path; None (nothing measured lately) keeps the margins."""
        if output_p99_ms is not None:
            self.ms = self._bounded(output_p99_ms + self.reader_ms)
            self.replied_ms = self._bounded(output_p99_ms + REPLY_MS)

    def decide_by(self, deadline_ms: float, replied: bool = False) -> float:
        """When a request due at ``deadline_ms`` must be decided (``replied``: its caller
        waits for a reply to its return address)."""
        return deadline_ms - (self.replied_ms if replied else self.ms)

    def _bounded(self, ms: float) -> float:
        return min(self.max_ms, max(self.min_ms, ms))
