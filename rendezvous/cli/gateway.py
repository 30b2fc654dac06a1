"""``rendezvous gateway``."""

from __future__ import annotations

import click

from rendezvous.cli.common import clear_errors, settings


@click.command("gateway")
@click.option("--host", default=None, help="Bind address (default: the setting, 127.0.0.1).")
@click.option("--port", type=int, default=None,
              help="HTTP port (default: the setting, 8000; 0: any free port).")
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="Log every HTTP request.")
def gateway(host: str | None, port: int | None, access_log: bool) -> None:
    """HTTP gateway speaking the Open Inference Protocol v2 (KServe, Triton, MLServer).

    Each row of POST /v2/models/<name>/infer becomes one input event with this
    gateway's return address; the answer comes by the deadline (parameters.timeout
    in microseconds, X-Deadline-Ms, else the live policy's), rows without a
    result by then say `timeout`. Settings: RENDEZVOUS_GATEWAY__* (API keys too).
    """
    from rendezvous.gateway import run

    s = settings()
    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    if overrides:
        s = s.model_copy(update={"gateway": s.gateway.model_copy(update=overrides)})
    with clear_errors():
        run(s, access_log=access_log)
