"""Prometheus metrics of every component, served on ``settings.metrics_host:metrics_port``.

Components declare their metrics with ``prometheus_client`` at module level
(names prefixed ``rendezvous_<component>_``) and call :func:`serve_metrics` once
at start. ``rendezvous status`` reads, per component: records processed, records
invalid, consumer lag (``..._lag``, from :class:`LagProbe`) and the time of one
batch (``..._batch_seconds``, buckets :data:`BATCH_BUCKETS`).

The same port answers the probes of a supervisor (Kubernetes): ``/healthz`` is 200
while the process serves HTTP at all; ``/readyz`` is 200 once the component announced
ready (:func:`rendezvous.readiness.announce_ready`), 503 before.
"""

from __future__ import annotations

import logging
import threading
import time
from http.server import ThreadingHTTPServer

from confluent_kafka import Consumer
from prometheus_client import Gauge
from prometheus_client.exposition import MetricsHandler

from rendezvous.readiness import is_ready
from rendezvous.settings import Settings

log = logging.getLogger(__name__)

BATCH_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)
"""Buckets of every ``..._batch_seconds`` histogram: 0.5 ms to 1 s."""


def serve_metrics(settings: Settings) -> int | None:
    """Start the ``/metrics`` HTTP endpoint if a port is configured; returns the port."""
    if settings.metrics_port is None:
        return None
    host = settings.metrics_host
    server = start_server(settings.metrics_port, host)
    port = int(server.server_address[1])  # resolves port 0 to the one chosen
    log.info("metrics on http://%s:%d/metrics (probes /healthz, /readyz)", host, port)
    return port


def start_server(port: int, host: str) -> ThreadingHTTPServer:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on ``host:port`` from a daemon thread."""
    server = ThreadingHTTPServer((host, port), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server


class _Handler(MetricsHandler):
    """Prometheus' handler with the two probes in front of it."""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._answer(200, b"alive\n")
        elif path == "/readyz":
            ready = is_ready()
            self._answer(200 if ready else 503, b"ready\n" if ready else b"not ready\n")
        else:
            super().do_GET()

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a probe every few seconds is not news."""


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
