"""``rendezvous archive prune | forget``: retention of the raw archive."""

from __future__ import annotations

from pathlib import Path

import click

from rendezvous.cli.common import clear_errors, settings

ARCHIVE_HELP = "Root directory of the archive [default: RENDEZVOUS_DECOY__ARCHIVE]."


@click.group("archive")
def archive() -> None:
    """Retention of the raw archive: prune old hours, forget one request."""


def _root(given: Path | None) -> Path:
    root = given or settings().decoy.archive
    if root is None:
        raise click.UsageError("no archive: pass --archive DIR (or RENDEZVOUS_DECOY__ARCHIVE)")
    return root


@archive.command()
@click.option("--archive", "root", type=click.Path(file_okay=False, path_type=Path),
              default=None, help=ARCHIVE_HELP)
@click.option("--older-than", required=True,
              help="Delete whole hours older than this: 30d, 12h, 90m.")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
def prune(root: Path | None, older_than: str, dry_run: bool) -> None:
    """Delete the hour partitions (every topic) older than the retention. An hour holding
    a file being written is kept until the next prune."""
    from rendezvous.archive.retention import parse_age
    from rendezvous.archive.retention import prune as run_prune

    with clear_errors():
        done = run_prune(_root(root), parse_age(older_than), dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    for path in done.deleted:
        click.echo(f"{verb} {path}")
    for path in done.busy:
        click.echo(f"kept {path} (a file is being written)", err=True)
    click.echo(f"# {verb} {len(done.deleted)} hour partitions", err=True)


@archive.command()
@click.option("--archive", "root", type=click.Path(file_okay=False, path_type=Path),
              default=None, help=ARCHIVE_HELP)
@click.option("--id", "request_id", required=True, help="The request id to remove.")
def forget(root: Path | None, request_id: str) -> None:
    """Remove every archived row of one request (its input, its decision), rewriting each
    file that holds one atomically. Kafka's own retention removes it from the topics."""
    from rendezvous.archive.retention import forget as run_forget

    with clear_errors():
        done = run_forget(_root(root), request_id)
    for path, rows in done.files.items():
        click.echo(f"removed {rows} rows from {path}")
    click.echo(f"# {done.rows} rows of {request_id!r} removed from {len(done.files)} files",
               err=True)
