"""Prometheus metrics of every component, served on ``settings.metrics_host:metrics_port``.

Components declare their metrics with ``prometheus_client`` at module level
(names prefixed ``rendezvous_<component>_``) and call :func:`serve_metrics` once
at start. ``rendezvous status`` reads, per component: records processed, records
invalid, consumer lag (``..._lag``, from :class:`LagProbe`) and the time of one
batch (``..._batch_seconds``, buckets :data:`BATCH_BUCKETS`).
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer
from prometheus_client import Gauge, start_http_server

from rendezvous.settings import Settings

log = logging.getLogger(__name__)

BATCH_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)
"""Buckets of every ``..._batch_seconds`` histogram: 0.5 ms to 1 s."""


def serve_metrics(settings: Settings) -> int | None:
    """Start the ``/metrics`` HTTP endpoint if a port is configured; returns the port."""
    if settings.metrics_port is None:
        return None
    host = settings.metrics_host
    server, _thread = start_http_server(settings.metrics_port, addr=host)
    port = int(server.server_address[1])  # resolves port 0 to the one chosen
    log.info("metrics on http://%s:%d/metrics", host, port)
    return port


class LagProbe:
    """Consumer lag (records not consumed yet, summed over the assigned partitions) from
    cached watermarks, so no broker round trip; sampled at most every ``interval_s``."""

    def __init__(self, consumer: Consumer, gauge: Gauge, interval_s: float = 1.0) -> None:
        self.consumer, self.gauge, self.interval_s = consumer, gauge, interval_s
        self.next_at = 0.0

    def maybe_update(self) -> None:
        now = time.monotonic()
        if now < self.next_at:
            return
        self.next_at = now + self.interval_s
        total = 0
        for tp in self.consumer.position(self.consumer.assignment()):
            _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0 and tp.offset >= 0:
                total += max(0, high - tp.offset)
        self.gauge.set(total)
