"""``rendezvous gateway``."""

from __future__ import annotations

import click

from rendezvous.cli.common import clear_errors, default, settings
from rendezvous.settings import GatewaySettings


@click.command("gateway")
@click.option("--host", default=None,
              help="Bind address (0.0.0.0 in a container)." + default(GatewaySettings, "host"))
@click.option("--port", type=click.IntRange(min=0, max=65535), default=None,
              help="HTTP port (0 = any free port, shown on the ready line)."
                   + default(GatewaySettings, "port"))
@click.option("--slack-ms", type=click.FloatRange(min=0), default=None,
              help="How long after a request's deadline results are still awaited before the "
                   "missing rows are answered timeout." + default(GatewaySettings, "slack_ms"))
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="Log every HTTP request.")
def gateway(host: str | None, port: int | None, slack_ms: float | None,
            access_log: bool) -> None:
    """HTTP gateway speaking the Open Inference Protocol v2 (KServe, Triton, MLServer).

    Each row of POST /v2/models/<name>/infer becomes one input event with this
    gateway's own Redis return address; the answer comes by the deadline
    (parameters.timeout in microseconds, X-Deadline-Ms, else the live policy's)
    plus the slack, and rows without a result by then say `timeout`. API keys:
    RENDEZVOUS_GATEWAY__API_KEYS='["key"]' (16 characters at least, never
    logged); with keys, every route but /v2/health/* needs one, /metrics and
    /openapi.json too (RENDEZVOUS_GATEWAY__METRICS_PUBLIC=true opens /metrics).
    Requests: Content-Type application/json or application/octet-stream (or
    none); a Host of RENDEZVOUS_GATEWAY__ALLOWED_HOSTS (default: the bind
    address and localhost); no cross-origin web page unless in
    RENDEZVOUS_GATEWAY__CORS_ORIGINS; at most RENDEZVOUS_GATEWAY__MAX_CONCURRENT
    at once (503 + Retry-After beyond). Prints "rendezvous-ready gateway
    http://HOST:PORT ..." on stderr once Kafka and Redis are reachable.
    """
    from rendezvous.gateway import run

    s = settings(gateway={"host": host, "port": port, "slack_ms": slack_ms})
    with clear_errors():
        run(s, access_log=access_log)
