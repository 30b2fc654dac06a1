"""``rendezvous monitor``: windows, drift, feedback accuracy and alerts (faust-streaming)."""

from __future__ import annotations

import click

from rendezvous.cli.common import clear_errors, settings


@click.command("monitor")
@click.option("--window-s", type=click.FloatRange(min=0.5), default=60.0, show_default=True,
              help="Length of the tumbling windows, seconds.")
@click.option("--grace-s", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="How long after its end a window is judged for alerts.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="HTTP port of /metrics and /windows on 127.0.0.1 (0 = any free port).")
@click.option("--sample", type=click.FloatRange(0, 1, min_open=True), default=1.0,
              show_default=True, help="Fraction of requests aggregated (by id hash).")
@click.option("--max-psi", type=float, default=0.25, show_default=True,
              help="Drift alert when a feature's PSI exceeds this.")
@click.option("--max-disagreement", type=float, default=0.2, show_default=True,
              help="Alert when canary and primary disagree on more than this fraction.")
@click.option("--max-timeout-rate", type=float, default=0.05, show_default=True,
              help="Alert when more than this fraction of decisions timed out.")
@click.option("--max-p99-ms", type=float, default=None,
              help="Alert when a model's p99 latency exceeds this (off unless given).")
@click.option("--min-samples", type=click.IntRange(min=1), default=100, show_default=True,
              help="A window with fewer observations than this never alerts.")
@click.option("--primary", default="primary", show_default=True, help="The primary model.")
@click.option("--canary", default="canary", show_default=True, help="The canary model.")
@click.option("--reference-model", default="primary", show_default=True,
              help="Model whose manifest (newest version) is the drift reference.")
@click.option("--keep-windows", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many past windows are kept (and served).")
@click.option("--join-ttl-s", type=click.FloatRange(min=1), default=600.0, show_default=True,
              help="How long a decision waits for its feedback label (and vice versa).")
@click.option("--replication-factor", type=click.IntRange(min=1), default=1, show_default=True,
              help="Replication factor of the changelog topic faust creates.")
def monitor(window_s: float, grace_s: float, port: int, sample: float, max_psi: float,
            max_disagreement: float, max_timeout_rate: float, max_p99_ms: float | None,
            min_samples: int, primary: str, canary: str, reference_model: str,
            keep_windows: int, join_ttl_s: float, replication_factor: int) -> None:
    """Watch scores, decisions, inputs and feedback; serve /metrics; send alerts."""
    from rendezvous.monitor.alerts import Thresholds
    from rendezvous.monitor.app import MonitorOptions, run

    thresholds = Thresholds(max_psi, max_disagreement, max_timeout_rate, max_p99_ms, min_samples)
    options = MonitorOptions(window_s, grace_s, port, sample, thresholds, primary, canary,
                             reference_model, keep_windows, join_ttl_s,
                             replication_factor=replication_factor)
    with clear_errors():
        run(settings(), options)
