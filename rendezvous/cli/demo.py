"""``rendezvous demo``: the whole pipeline under a load, a summary, a backtest; then stop."""

from __future__ import annotations

from pathlib import Path

import click

from rendezvous.cli.common import clear_errors, settings


@click.command("demo")
@click.option("--events", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Events to send, drawn from the packaged data set (with --data: the "
                   "file's rows in order, cycled).")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=200.0,
              show_default=True, help="Events per second (open loop: whatever the answers).")
@click.option("--deadline-ms", type=click.FloatRange(min=0, min_open=True), default=50.0,
              show_default=True, help="Deadline of every event.")
@click.option("--archive", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for the decoy's archive [default: archive/ in the run "
                   "directory, under RENDEZVOUS_STATE_DIR].")
@click.option("--warm-up-s", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Seconds of the same load first, not counted: a fresh broker and fresh "
                   "components answer their first seconds slowly. 0 = none.")
@click.option("--keep-running", is_flag=True,
              help="After the summary, keep the pipeline up for other clients until Ctrl-C.")
@click.option("--lifecycle/--no-lifecycle", default=True, show_default=True,
              help="After the load: send feedback labels, retrain the primary from the "
                   "archive and feedback, shadow it, backtest it, promote it, roll it back "
                   "(an imported primary is not retrained: those steps are skipped).")
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, metavar="FILE",
              help="Your rows instead of the packaged data set: a CSV or Parquet file with a "
                   "column per feature of your primary model (by name; strings as strings), "
                   "for your own models (--models-dir, or rendezvous.toml of `rendezvous "
                   "init`). Other columns are ignored.")
@click.option("--label", default=None, metavar="COLUMN",
              help="The column of --data holding each row's true label (a class, or a "
                   "regression's value): sent as feedback for the row's request.")
@click.pass_context
def demo(ctx: click.Context, events: int, rate: float, deadline_ms: float,
         archive: Path | None, warm_up_s: float, keep_running: bool,
         lifecycle: bool, data: Path | None, label: str | None) -> None:
    """Start Kafka + Redis (unless given) and every component, stream events, print a summary.

    Uses KAFKA_BOOTSTRAP_SERVERS/REDIS_URL or a running `rendezvous local up`,
    else starts a local Kafka and Redis and stops them at the end. Topics get a
    fresh prefix (demo-<time>.) per run. Ctrl-C stops everything it started.

    With --data FILE [--label COLUMN], your own models (from the models
    directory) score your rows, and the label column is the feedback:

    \b
      rendezvous --models-dir models demo --data data.csv --label target

    Exit status: 0, 1 when a request got no result or more than one (or an
    error), 130/143 when interrupted.
    """
    from rendezvous.demo import DemoOptions, run_demo

    if label is not None and data is None:
        raise click.UsageError("--label names a column of --data: give --data FILE too")
    options = DemoOptions(events=events, rate=rate, deadline_ms=deadline_ms, archive=archive,
                          keep_running=keep_running, warm_up_s=warm_up_s,
                          lifecycle=lifecycle, data=data, label=label)
    with clear_errors():
        status = run_demo(settings(local_endpoints=False), options)
    ctx.exit(status)
