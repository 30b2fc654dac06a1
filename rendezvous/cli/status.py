"""``rendezvous status``: one table of the live pipeline from its /metrics endpoints."""

from __future__ import annotations

import click


@click.command("status")
@click.option("--endpoint", "endpoints", multiple=True, metavar="NAME=URL", required=True,
              help="A component's metrics endpoint, e.g. worker=http://127.0.0.1:9101 "
                   "(repeat for each component).")
@click.option("--timeout-s", type=float, default=3.0, show_default=True,
              help="How long to wait for each endpoint.")
def status(endpoints: tuple[str, ...], timeout_s: float) -> None:
    """Print processed, invalid, lag and p99 batch latency of every component."""
    from rendezvous.monitor.status import render, scrape

    rows = []
    for spec in endpoints:
        name, sep, url = spec.partition("=")
        if not sep or not name or not url:
            raise click.BadParameter(f"{spec!r} is not NAME=URL", param_hint="--endpoint")
        rows.append(scrape(name, url, timeout_s))
    click.echo(render(rows))
