"""How long before a request's deadline the rendezvous must decide it.

A result decided exactly at the deadline reaches its reader one Kafka hop
later: late. The margin is that hop: this process's own output path, measured
(decision to broker acknowledgement, p99 of the recent results), plus the
reader's side, ``reader_ms``: a consumer built from this deployment's settings
gets a new record when its fetch returns, and with ``fetch_min_bytes`` not yet
reached that is up to ``fetch_wait_max_ms`` after the append (measured: with
1 ms assumed for it, half of the results decided at their margin arrived late).
The sum is kept within ``[min_ms, max_ms]`` so one slow moment cannot eat a
request's whole budget.
"""

from __future__ import annotations


class DeliveryMargin:
    """The current margin in ms (starts at ``max_ms`` until something is measured)."""

    __slots__ = ("max_ms", "min_ms", "ms", "reader_ms")

    def __init__(self, min_ms: float, max_ms: float, reader_ms: float = 0.0) -> None:
        if not 0.0 <= min_ms <= max_ms:
            raise ValueError(f"need 0 <= margin_min_ms <= margin_max_ms, got {min_ms}, {max_ms}")
        self.min_ms, self.max_ms, self.ms, self.reader_ms = min_ms, max_ms, max_ms, reader_ms

    def update(self, output_p99_ms: float | None) -> None:
        """Follow the measured output path; None (nothing measured lately) keeps the margin."""
        if output_p99_ms is not None:
            self.ms = min(self.max_ms, max(self.min_ms, output_p99_ms + self.reader_ms))

    def decide_by(self, deadline_ms: float) -> float:
        """When a request due at ``deadline_ms`` must be decided."""
        return deadline_ms - self.ms
