"""``rendezvous serve``."""

from __future__ import annotations

import logging

import click

from rendezvous.cli.common import METRICS_PORT_HELP, clear_errors, default, settings
from rendezvous.core import Scales
from rendezvous.model import ModelError, reference_quantiles
from rendezvous.model.deployment import load_deployment
from rendezvous.settings import ServeSettings as S

log = logging.getLogger(__name__)


@click.command("serve")
@click.option("--instance-id", default="0", show_default=True,
              help="Stable id of this instance (transactional id and static group member); "
                   "give each instance its own and reuse it on restart.")
@click.option("--commit-interval-ms", type=click.FloatRange(min=0, min_open=True), default=None,
              help="How often results are committed (they are visible to read_committed "
                   "consumers only then): latency against broker load."
                   + default(S, "commit_interval_ms"))
@click.option("--max-batch", type=click.IntRange(min=1), default=None,
              help="Records per poll at most." + default(S, "max_batch"))
@click.option("--max-wait-ms", type=click.FloatRange(min=1), default=None,
              help="Longest poll when no deadline is near." + default(S, "max_wait_ms"))
@click.option("--features-from", default=None,
              help="Model whose manifest defines valid features (inputs that do not fit are "
                   "rejected); '' validates the message structure only."
                   + default(S, "features_from"))
@click.option("--exactly-once", type=click.Choice(["dedup", "transactions"]), default=None,
              help="dedup: each result produced the moment it is decided (idempotent producer), "
                   "input offsets committed behind their acks, a re-read request found answered "
                   "on the scored topic; transactions: results and offsets commit atomically "
                   "(zombies fenced, every result waits for a commit: ~20-30 ms)."
                   + default(S, "exactly_once"))
@click.option("--margin-min-ms", type=click.FloatRange(min=0), default=None,
              help="Smallest delivery margin: a request is decided by its deadline less the "
                   "measured time a result takes to reach its reader, at least this."
                   + default(S, "margin_min_ms"))
@click.option("--margin-max-ms", type=click.FloatRange(min=0), default=None,
              help="Largest delivery margin (used until the output path is measured)."
                   + default(S, "margin_max_ms"))
@click.option("--metrics-port", type=click.IntRange(min=0), default=None, help=METRICS_PORT_HELP)
def serve(instance_id: str, commit_interval_ms: float | None, max_batch: int | None,
          max_wait_ms: float | None, features_from: str | None, exactly_once: str | None,
          margin_min_ms: float | None, margin_max_ms: float | None,
          metrics_port: int | None) -> None:
    """The rendezvous: one result per request on the scored topic before its deadline.

    Reads input and scores, decides by the live policy (preferred model's valid
    answer at once, else the best one at the deadline, else timeout), writes
    scored + decisions at once (or in transactions) and notifies return addresses
    in Redis. Decides early enough that the result is received by the deadline.
    """
    from rendezvous.service.runner import run

    s = settings(metrics_port=metrics_port, serve={
        "commit_interval_ms": commit_interval_ms, "max_batch": max_batch,
        "max_wait_ms": max_wait_ms, "features_from": features_from,
        "exactly_once": exactly_once, "margin_min_ms": margin_min_ms,
        "margin_max_ms": margin_max_ms})
    opts = s.serve
    deployment = None
    if opts.features_from:
        try:
            deployment = load_deployment(s.models_dir, opts.features_from)
        except ModelError as exc:
            raise click.ClickException(f"{exc} (or pass --features-from '')") from exc
    with clear_errors():
        run(s, instance_id, deployment=deployment,
            scales=Scales(reference_quantiles(s.models_dir)))
