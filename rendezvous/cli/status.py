"""``rendezvous status``: one table of the live pipeline from its /metrics endpoints, and the
model versions in force (live and shadow) from the registry on the control topic."""

from __future__ import annotations

import click


@click.command("status")
@click.option("--endpoint", "endpoints", multiple=True, metavar="NAME=URL",
              help="A component's metrics endpoint, e.g. worker=http://127.0.0.1:9101 "
                   "(repeat for each component).")
@click.option("--timeout-s", type=float, default=3.0, show_default=True,
              help="How long to wait for each endpoint.")
@click.option("--models/--no-models", default=True, show_default=True,
              help="Also print the live and shadow version of every model (reads the "
                   "control topic).")
def status(endpoints: tuple[str, ...], timeout_s: float, models: bool) -> None:
    """Print processed, invalid, lag and p99 batch latency of every component, and the
    live and shadow versions of every model."""
    from rendezvous.monitor.status import render, scrape

    rows = []
    for spec in endpoints:
        name, sep, url = spec.partition("=")
        if not sep or not name or not url:
            raise click.BadParameter(f"{spec!r} is not NAME=URL", param_hint="--endpoint")
        rows.append(scrape(name, url, timeout_s))
    if rows:
        click.echo(render(rows))
    if models:
        click.echo(_models(timeout_s))


def _models(timeout_s: float) -> str:
    from confluent_kafka import KafkaException

    from rendezvous.cli.common import settings
    from rendezvous.errors import RendezvousError
    from rendezvous.registry.commands import describe, list_rows

    try:
        rows, entries = list_rows(settings(), timeout_s)
    except (RendezvousError, KafkaException) as exc:
        return f"models: cannot read the registry ({exc})"
    lines = [describe(entry) for entry in entries.values()]
    for name in sorted({r.name for r in rows} - set(entries)):
        live = [r.version for r in rows if r.name == name and r.role == "live"]
        lines.append(f"{name}: live {live[0] if live else '?'} (newest; no registry entry), "
                     "shadow none")
    return "\n".join(["models:", *(f"  {line}" for line in lines)])
