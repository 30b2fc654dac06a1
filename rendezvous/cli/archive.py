"""``rendezvous archive prune | forget``: retention of the raw archive."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from rendezvous.cli.common import clear_errors, settings
from rendezvous.settings import Settings

if TYPE_CHECKING:
    from rendezvous.archive.retention import Located
    from rendezvous.archive.topics import KafkaCluster

ARCHIVE_HELP = "Root directory of the archive [default: RENDEZVOUS_DECOY__ARCHIVE]."


@click.group("archive")
def archive() -> None:
    """Retention of the raw archive: prune old hours, forget requests."""


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


INCOMPLETE = 3
"""Exit status of a forget that could not make sure of everything (the decoy had not
archived up to its start, or Kafka could not be asked); what it did is printed."""


@archive.command()
@click.option("--archive", "root", type=click.Path(file_okay=False, path_type=Path),
              default=None, help=ARCHIVE_HELP)
@click.option("--id", "ids", multiple=True, metavar="ID",
              help="A request id to remove, with the rows the HTTP gateway made of it "
                   "(ID.<token>.<row>); the gateway's rendezvous_id (ID.<token>) works "
                   "too. Repeat for several.")
@click.option("--prefix", "prefixes", multiple=True, metavar="PREFIX",
              help="Remove every request whose id starts with PREFIX. Repeat for several.")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="First wait until the decoy has archived everything written to its "
                   "topics before now (what it holds in memory is not in any file yet).")
@click.option("--wait-s", type=click.FloatRange(min=0), default=None,
              help="Longest wait for the decoy [default: 2 x its roll_seconds + 30].")
@click.option("--kafka/--no-kafka", default=True, show_default=True,
              help="Ask Kafka (the decoy's committed offsets, each topic's retention); "
                   "--no-kafka: the archive's files only.")
def forget(root: Path | None, ids: tuple[str, ...], prefixes: tuple[str, ...], wait: bool,
           wait_s: float | None, kafka: bool) -> None:
    """Remove every archived row of the requests named (their input, their decision; by
    key or by the value's id), rewriting each file that holds one atomically.

    With Kafka (the default), it first waits for the decoy to archive what it has
    buffered, then prints, for each pipeline topic, whether it still holds the request
    and how long until the topic's retention.ms removes it: Kafka deletes whole log
    segments, not records, so that time is "at the earliest". The input and deadletter
    topics hold the input as sent, never redacted. Exit status 3: not everything could be
    made sure of (said on stderr); run it again later.
    """
    from rendezvous.archive.retention import Selector
    from rendezvous.archive.retention import forget as run_forget

    if not ids and not prefixes:
        raise click.UsageError("name what to forget: --id ID and/or --prefix PREFIX")
    with clear_errors():
        selector = Selector(ids, prefixes)
        s = settings()
        archive_root = _root(root)
        cluster, incomplete = _kafka(s, kafka, wait, wait_s) if kafka else (None, False)
        try:
            done = run_forget(archive_root, selector)
            for path, rows in done.files.items():
                click.echo(f"removed {rows} rows from {path}")
            if done.rows:
                click.echo(f"# {done.rows} rows of {selector.describe()} removed from "
                           f"{len(done.files)} files", err=True)
            else:
                click.echo(f"# nothing of {selector.describe()} in the archive", err=True)
            if cluster is not None:
                incomplete |= _report_topics(cluster, s, done.located)
        finally:
            if cluster is not None:
                cluster.close()
    if incomplete:
        sys.exit(INCOMPLETE)


def _kafka(s: Settings, kafka: bool, wait: bool,
           wait_s: float | None) -> tuple[KafkaCluster | None, bool]:
    """The cluster to ask (None: none configured, or unreachable) and whether that leaves
    the forget incomplete; waits for the decoy when ``wait``."""
    from confluent_kafka import KafkaException

    from rendezvous.archive.topics import KafkaCluster, kafka_error, wait_for_decoy
    from rendezvous.errors import SettingsError

    try:
        s.kafka_bootstrap()
    except SettingsError:
        click.echo("# no Kafka configured: the archive's files only (nothing waited for, "
                   "no topic asked)", err=True)
        return None, False
    cluster = KafkaCluster(s, s.group("decoy"))
    if not wait:
        return cluster, False
    limit = wait_s if wait_s is not None else 2 * s.decoy.roll_seconds + 30
    recorded = [s.topic(t) for t in s.decoy.topics]
    click.echo(f"# waiting up to {limit:g} s for the decoy to archive what was written to "
               f"{', '.join(recorded)} before now", err=True)
    try:
        waited = wait_for_decoy(cluster, recorded, limit)
    except KafkaException as exc:
        click.echo(f"# Kafka unreachable ({kafka_error(exc)}): did not wait for the decoy; "
                   "what it holds in memory may be archived after this", err=True)
        cluster.close()
        return None, True
    for topic in waited.unrecorded:
        click.echo(f"# {topic}: no decoy records it (its group has never committed it and "
                   "no running decoy reads it): not waited for", err=True)
    if waited.done:
        click.echo(f"# the decoy had archived it all after {waited.waited_s:.1f} s", err=True)
        return cluster, False
    behind = ", ".join(f"{t}[{p}] at {c} of {h}" for t, p, c, h in waited.pending[:5])
    click.echo(f"# the decoy has not archived up to now after {waited.waited_s:.0f} s ("
               f"{behind}): rows of these requests may still reach the archive; run forget "
               "again once the decoy has caught up", err=True)
    return cluster, True


def _report_topics(cluster: KafkaCluster, s: Settings, located: Sequence[Located]) -> bool:
    """One line per pipeline topic: whether it still holds the request and until when;
    True when Kafka could not be asked."""
    from confluent_kafka import KafkaException

    from rendezvous.archive.topics import kafka_error, still_held

    try:
        held = still_held(cluster, s, located)
    except KafkaException as exc:
        click.echo(f"# Kafka unreachable ({kafka_error(exc)}): cannot say which topics "
                   "still hold the request", err=True)
        return True
    for topic in held:
        click.echo(topic.line())
    return False
