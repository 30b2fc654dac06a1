"""``rendezvous serve``."""

from __future__ import annotations

import logging

import click

from rendezvous.cli.common import clear_errors, settings
from rendezvous.model import ModelError, load_manifest, resolve_model

log = logging.getLogger(__name__)


@click.command("serve")
@click.option("--instance-id", default="0", show_default=True,
              help="Stable id of this instance (transactional id and static group member); "
                   "give each instance its own and reuse it on restart.")
@click.option("--commit-interval-ms", default=5.0, show_default=True,
              help="How often results are committed (they are visible to read_committed "
                   "consumers only then): latency against broker load.")
@click.option("--max-batch", default=1000, show_default=True, help="Records per poll at most.")
@click.option("--max-wait-ms", default=2.0, show_default=True,
              help="Longest poll when no deadline is near.")
@click.option("--features-from", default="primary", show_default=True,
              help="Model whose manifest defines valid features (inputs that do not fit are "
                   "rejected); '' validates the message structure only.")
@click.option("--exactly-once", type=click.Choice(["dedup", "transactions"]),
              default="dedup", show_default=True,
              help="dedup: each result produced the moment it is decided (idempotent producer), "
                   "input offsets committed behind their acks, a re-read request found answered "
                   "on the scored topic; transactions: results and offsets commit atomically "
                   "(zombies fenced, every result waits for a commit: ~20-30 ms).")
@click.option("--margin-min-ms", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="Smallest delivery margin: a request is decided by its deadline less the "
                   "measured time a result takes to reach its reader, at least this.")
@click.option("--margin-max-ms", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Largest delivery margin (used until the output path is measured).")
@click.option("--metrics-port", type=int, default=None, help="Prometheus /metrics port (0: any).")
def serve(instance_id: str, commit_interval_ms: float, max_batch: int, max_wait_ms: float,
          features_from: str, exactly_once: str, margin_min_ms: float, margin_max_ms: float,
          metrics_port: int | None) -> None:
    """The rendezvous: one result per request on the scored topic before its deadline.

    Reads input and scores, decides by the live policy (preferred model's valid
    answer at once, else the best one at the deadline, else timeout), writes
    scored + decisions at once (or in transactions) and notifies return addresses
    in Redis. Decides early enough that the result is received by the deadline.
    """
    from rendezvous.service.runner import run

    s = settings()
    if metrics_port is not None:
        s = s.model_copy(update={"metrics_port": metrics_port})
    features = None
    if features_from:
        try:
            features = load_manifest(resolve_model(s.models_dir, features_from)).feature_names
        except ModelError as exc:
            raise click.ClickException(f"{exc} (or pass --features-from '')") from exc
    with clear_errors():
        run(s, instance_id, commit_interval_ms=commit_interval_ms, max_batch=max_batch,
            max_wait_ms=max_wait_ms, feature_names=features, exactly_once=exactly_once,
            margin_min_ms=margin_min_ms, margin_max_ms=margin_max_ms)
