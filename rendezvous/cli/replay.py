"""``rendezvous replay``: re-produce archived input records to a topic."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import click

from rendezvous.archive import ArchiveError
from rendezvous.cli.common import clear_errors, settings
from rendezvous.replay import ReplayConfig, ReplayError
from rendezvous.replay import replay as run_replay
from rendezvous.replay.pacing import Mode


@click.command("replay")
@click.option("--archive", type=click.Path(exists=True, file_okay=False, path_type=Path),
              required=True, help="Root directory of the archive the decoy wrote.")
@click.option("--from", "start", default=None,
              help="First record time (inclusive): ISO-8601 (UTC unless it says) or epoch ms.")
@click.option("--to", "end", default=None, help="Last record time (exclusive), same forms.")
@click.option("--speed", type=float, default=None,
              help="Play the recorded timeline this many times faster (1 = as recorded).")
@click.option("--rate", type=float, default=None, help="Send this many records per second.")
@click.option("--max", "as_fast", is_flag=True,
              help="As fast as possible (the default when no pace is given).")
@click.option("--topic", default=None,
              help="Target topic, full name [default: <prefix>replay, created if missing "
                   "with the input topic's partition count].")
@click.option("--source", default="input", show_default=True,
              help="Logical topic of the archive to replay.")
@click.option("--into-production", is_flag=True,
              help="Allow the target to be the production input topic.")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
def replay(archive: Path, start: str | None, end: str | None, speed: float | None,
           rate: float | None, as_fast: bool, topic: str | None, source: str,
           into_production: bool, no_progress: bool) -> None:
    """Re-produce archived records (key, value, headers) in per-partition order.

    Never writes into the production input topic unless --into-production is given.
    """
    paces = [name for name, given in (("speed", speed is not None), ("rate", rate is not None),
                                      ("max", as_fast)) if given]
    if len(paces) > 1:
        raise click.UsageError(f"give at most one of --speed, --rate, --max (got {paces})")
    mode = cast(Mode, paces[0] if paces else "max")
    value = speed if mode == "speed" else rate if mode == "rate" else 0.0
    s = settings()
    config = ReplayConfig(archive=archive, topic=topic or s.topic("replay"), source=source,
                          start=start, end=end, mode=mode, value=float(value or 0.0),
                          into_production=into_production, progress=not no_progress)
    with clear_errors():
        try:
            result = run_replay(s, config)
        except (ArchiveError, ReplayError) as exc:
            raise click.ClickException(str(exc)) from exc
    for skip in result.skipped:
        click.echo(f"skipped unreadable archive file {skip['path']}: {skip['reason']}", err=True)
    click.echo(f"replayed {result.records:,} records to {result.topic} in "
               f"{result.seconds:.1f} s ({result.rate:,.0f} rec/s)")
