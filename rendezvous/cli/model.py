"""``rendezvous model list | import | shadow | unshadow | promote | rollback | train``: model
versions."""

from __future__ import annotations

import time
from pathlib import Path

import click

from rendezvous.cli.common import clear_errors, settings


def _actor_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option("--actor", default=None,
                        help="Who makes the change, recorded with it; default: the OS user.")(f)


@click.group("model")
def model() -> None:
    """Model versions: import your own ONNX model; which is live, which are shadows; each
    change is one record on the control topic (with who and when) that running workers
    follow without a restart."""


@model.command("list")
def list_() -> None:
    """Every version in the models directory: role, sha256, held-out AUC, last backtest."""
    from rendezvous.registry.commands import describe, list_rows

    with clear_errors():
        rows, entries = list_rows(settings())
    click.echo(f"{'model':<10} {'version':<8} {'role':<9} {'auc':>6}  {'backtest':<8} sha256")
    for r in rows:
        auc = f"{r.auc:.3f}" if r.auc is not None else "-"
        click.echo(f"{r.name:<10} {r.version:<8} {r.role:<9} {auc:>6}  {r.backtest:<8} "
                   f"{r.sha256[:16]}")
    for entry in entries.values():
        click.echo(describe(entry))


def _change(name: str, action: str, version: str | None, actor: str | None,
            forced: bool = False) -> None:
    from rendezvous.registry.commands import change, describe
    from rendezvous.service.audit import os_user

    with clear_errors():
        entry = change(settings(), name, action, version, actor=actor or os_user(),
                       forced=forced)
    click.echo(describe(entry))


@model.command()
@click.argument("name")
@click.argument("version")
@_actor_option
def shadow(name: str, version: str, actor: str | None) -> None:
    """Score VERSION of NAME on live traffic in shadow workers (`rendezvous worker --model
    NAME --shadow`): recorded in decisions as candidates, never chosen."""
    _change(name, "shadow", version, actor)


@model.command()
@click.argument("name")
@click.argument("version")
@_actor_option
def unshadow(name: str, version: str, actor: str | None) -> None:
    """Stop scoring shadow VERSION of NAME."""
    _change(name, "unshadow", version, actor)


@model.command()
@click.argument("name")
@click.argument("version")
@click.option("--force", is_flag=True,
              help="Promote even without a passed backtest of this version (recorded).")
@_actor_option
def promote(name: str, version: str, force: bool, actor: str | None) -> None:
    """Make VERSION of NAME live: live workers swap to it between two batches. Refused
    unless the last `rendezvous backtest` of that version passed (--force overrides)."""
    _change(name, "promote", version, actor, forced=force)


@model.command()
@click.argument("name")
@_actor_option
def rollback(name: str, actor: str | None) -> None:
    """Make the previous live version of NAME live again."""
    _change(name, "rollback", None, actor)


@model.command()
@click.option("--archive", type=click.Path(exists=True, file_okay=False, path_type=Path),
              required=True, help="Root directory of the raw archive the decoy wrote.")
@click.option("--model", "name", default="primary", show_default=True,
              help="Model to retrain (its training code and feature order).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Models directory to write <model>/<version>/ into; default: the models "
                   "directory setting (never the package's bundled models).")
@click.option("--version", default=None,
              help="Version to write; default: one more than the highest there is.")
def train(archive: Path, name: str, out: Path | None, version: str | None) -> None:
    """Train the next version of a model from the archived inputs joined with the labels on
    the feedback topic (by request id); deterministic for the same inputs."""
    from rendezvous.registry.training import train as run_train

    with clear_errors():
        done = run_train(settings(), name, archive, out=out, version=version)
    m = done.manifest
    window, metrics = m.training, m.metrics
    assert window is not None and metrics is not None
    first, last = (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t / 1000.0))
                   for t in (window.first_ms, window.last_ms))
    click.echo(f"{m.name} {m.version}: {window.rows:,} labelled rows of {done.inputs:,} "
               f"archived ({window.train_rows:,} train, {window.held_out_rows:,} held out), "
               f"{first} .. {last}; held-out AUC {metrics.auc:.4f}, accuracy "
               f"{metrics.accuracy:.4f}, sha256 {m.sha256[:12]} -> {done.directory}")


@model.command("import")
@click.argument("name")
@click.argument("onnx_file", metavar="MODEL.onnx",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="CSV (.csv, .tsv, optionally .gz) or Parquet (.parquet) file "
                                  "of rows the model takes, one column per feature, named as "
                                  "the features: checked against the graph and scored once.")
@click.option("--label", default=None, metavar="COLUMN",
              help="Column of FILE with the true labels (or values): gives the metrics, and "
                   "helps tell the task; it is never fed to the model.")
@click.option("--version", default=None, metavar="V",
              help="Version to write; default: one more than the highest integer there is.")
@click.option("--task", type=click.Choice(["auto", "binary", "multiclass", "regression"]),
              default="auto", show_default=True,
              help="What the model does; auto: probabilities of 2 classes -> binary, of more "
                   "-> multiclass; one value per row -> regression, or binary when --label "
                   "holds 0/1 and every value is in [0, 1].")
@click.option("--features", default=None, metavar="A,B,...",
              help="For a graph with one matrix input [N, F]: the columns that are its "
                   "features, in order; default: every column but the label, in file order.")
@click.option("--output", "outputs", multiple=True, metavar="ROLE=NAME",
              help="Use graph output NAME for ROLE (probabilities, label or value) instead of "
                   "finding it by shape and type; repeatable.")
@click.option("--force", is_flag=True, help="Replace the version if it exists.")
def import_(name: str, onnx_file: Path, data: Path, label: str | None, version: str | None,
            task: str, features: str | None, outputs: tuple[str, ...], force: bool) -> None:
    """Import your own ONNX model as version V of model NAME in the models directory
    (rendezvous --models-dir DIR): DIR/NAME/V/model.onnx and its model.yaml.

    Reads the graph's inputs and outputs, checks FILE's columns fit them, tells the task
    and class labels, scores FILE once with the workers' own runtime (the reference
    statistics drift and score mapping use) and, with --label, measures the model on
    every row of FILE (binary: AUC, accuracy; multiclass: accuracy, log loss; regression:
    RMSE, MAE, R²). Prints what it found, one line each; refuses with one line saying
    why, and then writes nothing.

    Graphs taken: one 2-D numeric input [N, F], or one [N, 1] / [N] input per feature
    (float, int64 or string), named as FILE's columns; outputs class probabilities
    (tensor [N, K] or ZipMap), a label, or one value per row.

    \b
    Example:
      rendezvous --models-dir models model import churn churn.onnx --data sample.csv --label churned
    """
    from rendezvous.model.importer import import_model

    with clear_errors():
        import_model(settings().models_dir, name, onnx_file, data, label=label,
                     version=version, task=task, outputs=outputs, force=force,
                     features=[f.strip() for f in features.split(",") if f.strip()]
                     if features else None, say=click.echo)
