"""``rendezvous topics apply | list``."""

from __future__ import annotations

import click

from rendezvous.cli.common import clear_errors, settings
from rendezvous.transport.topics import apply_topics, describe_topics


@click.group("topics")
def topics() -> None:
    """Create and check the topics declared in topics.yaml."""


@topics.command()
def apply() -> None:
    """Create the missing topics; fail if an existing one differs from topics.yaml."""
    with clear_errors():
        created = apply_topics(settings())
    click.echo(f"created {', '.join(created)}" if created else "all topics exist; nothing to do")


@topics.command("list")
def list_() -> None:
    """Show every declared topic and its state on the cluster."""
    with clear_errors():
        rows = describe_topics(settings())
    click.echo(f"{'topic':12} {'name':32} {'partitions':>10}  policy")
    for name, full, partitions, policy in rows:
        state = str(partitions) if partitions is not None else "missing"
        click.echo(f"{name:12} {full:32} {state:>10}  {policy}")
