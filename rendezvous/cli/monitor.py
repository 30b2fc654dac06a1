"""``rendezvous monitor``: windows, drift, feedback accuracy and alerts (faust-streaming)."""

from __future__ import annotations

import click

from rendezvous.cli.common import clear_errors, default, settings
from rendezvous.settings import MonitorSettings as M
from rendezvous.settings import Thresholds as T


@click.command("monitor")
@click.option("--window-s", type=click.FloatRange(min=0.5), default=None,
              help="Length of the tumbling windows, seconds." + default(M, "window_s"))
@click.option("--grace-s", type=click.FloatRange(min=0), default=None,
              help="How long after its end a window is judged for alerts." + default(M, "grace_s"))
@click.option("--metrics-port", "--port", "metrics_port", type=click.IntRange(0, 65535),
              default=None,
              help="HTTP port of /metrics and /windows (0 = any free port, the default; shown "
                   "on the ready line); the same setting as RENDEZVOUS_METRICS_PORT. It binds "
                   "RENDEZVOUS_METRICS_HOST (default 127.0.0.1).")
@click.option("--sample", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Fraction of requests aggregated (by id hash)." + default(M, "sample"))
@click.option("--max-psi", type=float, default=None,
              help="Drift alert when a feature's PSI exceeds this." + default(T, "max_psi"))
@click.option("--max-disagreement", type=float, default=None,
              help="Alert when canary and primary disagree on more than this fraction."
                   + default(T, "max_disagreement"))
@click.option("--max-timeout-rate", type=float, default=None,
              help="Alert when more than this fraction of decisions timed out."
                   + default(T, "max_timeout_rate"))
@click.option("--max-p99-ms", type=float, default=None,
              help="Alert when a model's p99 latency exceeds this (off unless given)."
                   + default(T, "max_p99_ms"))
@click.option("--min-samples", type=click.IntRange(min=1), default=None,
              help="A window with fewer observations than this never alerts."
                   + default(T, "min_samples"))
@click.option("--primary", default=None, help="The primary model." + default(M, "primary"))
@click.option("--canary", default=None, help="The canary model." + default(M, "canary"))
@click.option("--reference-model", default=None,
              help="Model whose manifest (newest version) is the drift reference."
                   + default(M, "reference_model"))
@click.option("--keep-windows", type=click.IntRange(min=1), default=None,
              help="How many past windows are kept (and served)." + default(M, "keep_windows"))
@click.option("--join-ttl-s", type=click.FloatRange(min=1), default=None,
              help="How long a decision waits for its feedback label (and vice versa)."
                   + default(M, "join_ttl_s"))
@click.option("--replication-factor", type=click.IntRange(min=1), default=None,
              help="Replication factor of the changelog topic faust creates."
                   + default(M, "replication_factor"))
def monitor(window_s: float | None, grace_s: float | None, metrics_port: int | None,
            sample: float | None, max_psi: float | None, max_disagreement: float | None,
            max_timeout_rate: float | None, max_p99_ms: float | None, min_samples: int | None,
            primary: str | None, canary: str | None, reference_model: str | None,
            keep_windows: int | None, join_ttl_s: float | None,
            replication_factor: int | None) -> None:
    """Watch scores, decisions, inputs and feedback; serve /metrics; send alerts."""
    from rendezvous.monitor.app import run

    s = settings(metrics_port=metrics_port, monitor={
        "window_s": window_s, "grace_s": grace_s, "sample": sample, "primary": primary,
        "canary": canary, "reference_model": reference_model, "keep_windows": keep_windows,
        "join_ttl_s": join_ttl_s, "replication_factor": replication_factor,
        "thresholds": {"max_psi": max_psi, "max_disagreement": max_disagreement,
                       "max_timeout_rate": max_timeout_rate, "max_p99_ms": max_p99_ms,
                       "min_samples": min_samples},
    })
    with clear_errors():
        run(s)
