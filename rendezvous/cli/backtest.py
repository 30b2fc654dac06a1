"""``rendezvous backtest``: score archived inputs with a candidate, compare with production."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import click

from rendezvous.archive import ArchiveError
from rendezvous.backtest import CHOSEN, BacktestConfig
from rendezvous.backtest import backtest as run_backtest
from rendezvous.backtest.runner import DEFAULT_MIN_LABEL_AGREEMENT
from rendezvous.cli.common import clear_errors, settings
from rendezvous.model import Model, ModelError, load_model, resolve_model
from rendezvous.settings import Settings

GATE_NAMES = {"agreement": "agreement", "quantile_distance": "quantile distance",
              "input_psi": "input PSI", "label_agreement": "label agreement"}


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
@click.option("--min-agreement", type=float, default=0.7, show_default=True,
              help="Binary and regression: fail (exit 3) below this rank agreement "
                   "(Spearman's rho) with production's scores.")
@click.option("--max-quantile-distance", type=float, default=0.2, show_default=True,
              help="Binary and regression: fail (exit 3) above this distance (0..1) between "
                   "the two scores' distributions, each mapped to quantiles of its own "
                   "training reference.")
@click.option("--min-label-agreement", type=float, default=DEFAULT_MIN_LABEL_AGREEMENT,
              show_default=True,
              help="Multiclass: fail (exit 3) below this share of requests where the "
                   "candidate's class is the one production answered.")
@click.option("--max-psi", type=float, default=0.2, show_default=True,
              help="Fail (exit 3) above this PSI of an input feature against the "
                   "candidate's training reference.")
@click.option("--threshold", type=float, default=0.5, show_default=True,
              help="Binary: score at and above which the label is the positive class (for "
                   "the reported label agreement).")
@click.option("--record/--no-record", default=True, show_default=True,
              help="Record the verdict on the control topic as the last backtest of this "
                   "model version (`rendezvous model promote` requires a pass).")
@click.option("--actor", default=None, help="Who ran it, recorded; default: the OS user.")
@click.option("--from", "start", default=None, help="First record time: ISO-8601 or epoch ms.")
@click.option("--to", "end", default=None, help="End record time (exclusive), same forms.")
@click.pass_context
def backtest(ctx: click.Context, archive: Path, model_ref: str, against: str, report: Path,
             min_agreement: float, max_quantile_distance: float, min_label_agreement: float,
             max_psi: float, threshold: float, record: bool, actor: str | None, start: str | None,
             end: str | None) -> None:
    """Score the archived inputs with a candidate model and compare with production.

    The gates follow the candidate's task: rank agreement and quantile distance for a
    binary classifier or a regression, label agreement for a multiclass classifier, input
    PSI for all. Exit status: 0 = within thresholds, 3 = outside them or nothing to
    compare, 1 = error. Writes REPORT/summary.json, report.html, histograms.png and
    qq.png (binary, regression) or confusion.png (multiclass).
    """
    s_ = settings()
    config = BacktestConfig(archive=archive, report=report, against=against,
                            min_agreement=min_agreement,
                            max_quantile_distance=max_quantile_distance, max_psi=max_psi,
                            min_label_agreement=min_label_agreement,
                            threshold=threshold, start=start, end=end,
                            models_dir=s_.models_dir)
    with clear_errors():
        try:
            model = _load(model_ref, s_.models_dir)
            result = run_backtest(model, config)
        except (ArchiveError, ModelError) as exc:
            raise click.ClickException(str(exc)) from exc
    if record:
        _record(s_, model, result.summary, actor)
    s = result.summary
    for skip in s["skipped_files"]:
        click.echo(f"skipped unreadable archive file {skip['path']}: {skip['reason']}", err=True)
    gates = ", ".join(f"{GATE_NAMES.get(gate, gate)} {_number(s[gate])}" for gate in s["gates"])
    click.echo(f"{s['candidate']} vs {s['against']} ({s['task']}): {s['rows']:,} rows, "
               f"{gates}, {s['rows_per_s']:,.0f} rows/s -> "
               f"{'passed' if s['passed'] else 'FAILED'}")
    if s["labels"] is not None and s["labels"]["unlabelled_rows"]:
        click.echo(f"  production's class unknown for {s['labels']['unlabelled_rows']:,} "
                   "requests (left out of the label agreement)", err=True)
    if s["quality"] is not None:
        click.echo(f"  against {s['quality']['labelled_rows']:,} feedback labels: candidate "
                   f"{_metrics(s['quality']['candidate'])}; production "
                   f"{_metrics(s['quality']['production'])}")
    for failure in s["failures"]:
        click.echo(f"  {failure}", err=True)
    click.echo(f"report: {report / 'report.html'}")
    ctx.exit(result.exit_status)


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) and math.isfinite(value) else "n/a"


def _metrics(quality: dict[str, float]) -> str:
    return ", ".join(f"{name.replace('_', ' ')} {_number(value)}"
                     for name, value in quality.items() if name != "rows")


def _record(s: Settings, model: Model, summary: dict[str, Any], actor: str | None) -> None:
    """Publish the verdict as the last backtest of this version; a warning if it cannot."""
    from confluent_kafka import KafkaException

    from rendezvous.errors import RendezvousError
    from rendezvous.messages import BacktestVerdict
    from rendezvous.registry import publish_verdict
    from rendezvous.service.audit import os_user

    numbers = {k: summary.get(k) for k in ("rows", "agreement", "quantile_distance",
                                           "input_psi", "label_agreement")}
    if summary.get("quality") is not None:  # the candidate's quality against feedback
        numbers |= {f"feedback_{k}": v for k, v in summary["quality"]["candidate"].items()}
    metrics = {k: float(v) for k, v in numbers.items()
               if isinstance(v, int | float) and math.isfinite(v)}
    verdict = BacktestVerdict(model.name, model.version, bool(summary["passed"]),
                              summary["against"], list(summary["failures"]), metrics,
                              actor or os_user(), time.time() * 1000.0,
                              sha256=model.manifest.sha256)
    try:
        publish_verdict(s, verdict)
    except (RendezvousError, KafkaException) as exc:
        click.echo(f"warning: verdict not recorded on the control topic ({exc}); "
                   "`rendezvous model promote` will not see it", err=True)
