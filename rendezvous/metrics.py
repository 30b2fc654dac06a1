"""Prometheus counters of every component, served on ``settings.metrics_port``.

Components declare their metrics with ``prometheus_client`` at module level
(names prefixed ``rendezvous_``) and call :func:`serve_metrics` once at start.
"""

from __future__ import annotations

import logging

from prometheus_client import start_http_server

from rendezvous.settings import Settings

log = logging.getLogger(__name__)


def serve_metrics(settings: Settings) -> int | None:
    """Start the ``/metrics`` HTTP endpoint if a port is configured; returns the port."""
    if settings.metrics_port is None:
        return None
    server, _thread = start_http_server(settings.metrics_port, addr="127.0.0.1")
    port = int(server.server_address[1])  # resolves port 0 to the one chosen
    log.info("metrics on http://127.0.0.1:%d/metrics", port)
    return port
