"""``rendezvous backtest``: score archived inputs with a candidate, compare with production."""

from __future__ import annotations

from pathlib import Path

import click

from rendezvous.archive import ArchiveError
from rendezvous.backtest import CHOSEN, BacktestConfig
from rendezvous.backtest import backtest as run_backtest
from rendezvous.cli.common import clear_errors, settings
from rendezvous.model import Model, ModelError, load_model, resolve_model


def _load(model: str, models_dir: Path) -> Model:
    """A model directory (``models/primary/1``), else ``name[/version]`` under models_dir."""
    if Path(model).is_dir():
        return load_model(Path(model))
    name, _, version = model.partition("/")
    return load_model(resolve_model(models_dir, name, version or None))


@click.command("backtest")
@click.option("--archive", type=click.Path(exists=True, file_okay=False, path_type=Path),
              required=True, help="Root directory of the archive the decoy wrote.")
@click.option("--model", "model_ref", required=True,
              help="Candidate: a directory models/<name>/<version>, or <name>[/<version>].")
@click.option("--against", default=CHOSEN, show_default=True,
              help="Production model whose recorded scores to compare with; "
                   f"{CHOSEN!r} = the answer production gave.")
@click.option("--report", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory for report.html, summary.json and the PNG plots.")
@click.option("--min-agreement", type=float, default=0.95, show_default=True,
              help="Fail (exit 3) below this share of same labels.")
@click.option("--max-psi", type=float, default=0.2, show_default=True,
              help="Fail (exit 3) above this PSI between the score distributions.")
@click.option("--threshold", type=float, default=0.5, show_default=True,
              help="Score at and above which the label is 1.")
@click.option("--from", "start", default=None, help="First record time: ISO-8601 or epoch ms.")
@click.option("--to", "end", default=None, help="End record time (exclusive), same forms.")
@click.pass_context
def backtest(ctx: click.Context, archive: Path, model_ref: str, against: str, report: Path,
             min_agreement: float, max_psi: float, threshold: float, start: str | None,
             end: str | None) -> None:
    """Score the archived inputs with a candidate model and compare with production.

    Exit status: 0 = within thresholds, 3 = outside them or nothing to compare,
    1 = error. Writes REPORT/summary.json, report.html, qq.png, histograms.png.
    """
    config = BacktestConfig(archive=archive, report=report, against=against,
                            min_agreement=min_agreement, max_psi=max_psi,
                            threshold=threshold, start=start, end=end)
    with clear_errors():
        try:
            model = _load(model_ref, settings().models_dir)
            result = run_backtest(model, config)
        except (ArchiveError, ModelError) as exc:
            raise click.ClickException(str(exc)) from exc
    s = result.summary
    for skip in s["skipped_files"]:
        click.echo(f"skipped unreadable archive file {skip['path']}: {skip['reason']}", err=True)
    click.echo(f"{s['candidate']} vs {s['against']}: {s['rows']:,} rows, agreement "
               f"{s['agreement']:.4f}, PSI {s['psi']:.4f}, KS {s['ks_statistic']:.4f}, "
               f"{s['rows_per_s']:,.0f} rows/s -> {'passed' if s['passed'] else 'FAILED'}")
    for failure in s["failures"]:
        click.echo(f"  {failure}", err=True)
    click.echo(f"report: {report / 'report.html'}")
    ctx.exit(result.exit_status)
