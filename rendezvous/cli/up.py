"""``rendezvous up``: the whole pipeline for real clients, until Ctrl-C."""

from __future__ import annotations

from pathlib import Path

import click

from rendezvous.cli.common import clear_errors, settings


@click.command("up")
@click.option("--archive", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for the decoy's archive [default: archive/ in the run "
                   "directory, under RENDEZVOUS_STATE_DIR].")
@click.pass_context
def up(ctx: click.Context, archive: Path | None) -> None:
    """Start every component on Kafka + Redis and print how to reach them; Ctrl-C stops them.

    Uses KAFKA_BOOTSTRAP_SERVERS/REDIS_URL or a running `rendezvous local up`,
    else starts a local Kafka and Redis, which keep running afterwards
    (`rendezvous local down` stops them). Topics: RENDEZVOUS_TOPIC_PREFIX
    (default rendezvous.), applied from topics.yaml.
    """
    from rendezvous.demo import run_up
    from rendezvous.model.deployment import load_deployment

    s = settings(local_endpoints=False)  # a running local stack is leased, not assumed
    with clear_errors():
        if s.serve.features_from:  # refuse models that disagree before starting anything
            load_deployment(s.models_dir, s.serve.features_from)
        status = run_up(s, archive)
    ctx.exit(status)
