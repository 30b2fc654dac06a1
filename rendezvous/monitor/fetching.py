"""The monitor is cheap: it fetches in bulk and skips faust's per-event bookkeeping.

It is off the latency path and shares two cores with it.

faust builds its aiokafka consumer with ``fetch_min_bytes`` left at 1, so every
record that arrives ends a fetch: thousands of tiny fetches a second, each one
costing the broker and this process. Waiting for ``FETCH_MIN_BYTES`` (or faust's
1.5 s ``fetch_max_wait_ms``) instead delays the windows by a second at most.
faust has no setting for it, so the consumer class it instantiates is wrapped.
"""

from __future__ import annotations

from typing import Any

import faust.transport.drivers.aiokafka as faust_driver
from faust.sensors import Monitor

FETCH_MIN_BYTES = 256 * 1024


def fetch_in_bulk(min_bytes: int = FETCH_MIN_BYTES) -> None:
    """Make the consumers faust creates in this process wait for ``min_bytes`` per fetch."""
    module = faust_driver.aiokafka
    base = module.AIOKafkaConsumer
    if getattr(base, "bulk_fetch", False):
        return

    class BulkFetching(base):  # type: ignore[misc, valid-type]
        bulk_fetch = True

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("fetch_min_bytes", min_bytes)
            super().__init__(*args, **kwargs)

    module.AIOKafkaConsumer = BulkFetching


class QuietSensor(Monitor):
    """faust's Monitor sensor without its per-message and per-event bookkeeping (a large
    share of this process's CPU, kept in memory nobody reads: this monitor exports its own
    metrics). faust calls the rest of Monitor directly, so it stays."""

    def on_message_in(self, *args: Any, **kwargs: Any) -> None:
        """Not tracked."""

    def on_message_out(self, *args: Any, **kwargs: Any) -> None:
        """Not tracked."""

    def on_stream_event_in(self, *args: Any, **kwargs: Any) -> None:
        """Not tracked."""

    def on_stream_event_out(self, *args: Any, **kwargs: Any) -> None:
        """Not tracked."""

    def on_table_get(self, *args: Any, **kwargs: Any) -> None:
        """Not tracked."""

    def on_table_set(self, *args: Any, **kwargs: Any) -> None:
        """Not tracked."""

    def on_send_initiated(self, *args: Any, **kwargs: Any) -> None:
        """Not tracked."""

    def on_send_completed(self, *args: Any, **kwargs: Any) -> None:
        """Not tracked."""
