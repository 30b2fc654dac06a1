"""How long before a request's deadline the rendezvous must decide it.

A result decided exactly at the deadline reaches its reader one Kafka hop
later: late. The margin is that hop, measured on this process's own output
path (decision to broker acknowledgement, p99 of the recent results) plus
``READER_MS`` for the reader's fetch to return, and kept within
``[min_ms, max_ms]`` so one slow moment cannot eat a request's whole budget.
"""

from __future__ import annotations

READER_MS = 1.0
"""The reader's side of the hop: its long-poll fetch returns as the record is appended."""


class DeliveryMargin:
    """The current margin in ms (starts at ``max_ms`` until something is measured)."""

    __slots__ = ("max_ms", "min_ms", "ms")

    def __init__(self, min_ms: float, max_ms: float) -> None:
        if not 0.0 <= min_ms <= max_ms:
            raise ValueError(f"need 0 <= margin_min_ms <= margin_max_ms, got {min_ms}, {max_ms}")
        self.min_ms, self.max_ms, self.ms = min_ms, max_ms, max_ms

    def update(self, output_p99_ms: float | None) -> None:
        """Follow the measured output path; None (nothing measured lately) keeps the margin."""
        if output_p99_ms is not None:
            self.ms = min(self.max_ms, max(self.min_ms, output_p99_ms + READER_MS))

    def decide_by(self, deadline_ms: float) -> float:
        """When a request due at ``deadline_ms`` must be decided."""
        return deadline_ms - self.ms
