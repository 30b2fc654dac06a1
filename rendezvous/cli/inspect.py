"""``rendezvous inspect ID``: one request's story, from the topics or the archive."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from rendezvous.cli.common import clear_errors, settings

NOT_FOUND = 1
"""Exit status when no record of the id is in the range searched."""


@click.command("inspect")
@click.argument("request_id", metavar="ID")
@click.option("--since", metavar="T",
              help="Search from this time: ISO-8601 (2026-12-07T22:40:00Z; UTC unless it "
                   "says), epoch milliseconds, or an age before now (90m, 2h, 1d) "
                   "[default: an hour before --until].")
@click.option("--until", metavar="T",
              help="Search up to this time (same forms) [default: now]. Records appended "
                   "after it are not read.")
@click.option("--archive", "root", type=click.Path(file_okay=False, path_type=Path),
              default=None, metavar="DIR",
              help="Read the decoy's archive in DIR instead of the topics (the policy and "
                   "the Redis reply are still asked of Kafka and Redis when configured).")
@click.option("--format", "form", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text for people, json for machines.")
@click.option("--timeout-s", type=click.FloatRange(min=1), default=30.0, show_default=True,
              help="Longest time to read each topic's range.")
def inspect(request_id: str, since: str | None, until: str | None, root: Path | None,
            form: str, timeout_s: float) -> None:
    """Tell the story of request ID: the input as received, each model's answer, the
    policy in force, the decision and why, the provisional and final results, feedback,
    and the Redis reply.

    ID is a request id; a gateway call's id (or its rendezvous_id) shows each of its rows
    (ID.<token>.<row>). Only the time range is read, on every partition (the producer's
    partitioner is unknown); a request not in it: "not found" and exit status 1.
    """
    from rendezvous.inspect import inspect_request
    from rendezvous.inspect.render import json_text, text
    from rendezvous.inspect.window import window

    with clear_errors():
        span = window(since, until)
        found = inspect_request(settings(), request_id, span, root, timeout_s)
    if form == "json":
        click.echo(json_text(found.stories, found.searched, span.describe()))
    else:
        for i, story in enumerate(found.stories):
            if i:
                click.echo("")
            click.echo("\n".join(text(story)))
    if not found.found:
        click.echo(found.not_found(), err=True)
        sys.exit(NOT_FOUND)
