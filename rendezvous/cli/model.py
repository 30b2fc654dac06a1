"""``rendezvous model list | shadow | unshadow | promote | rollback | train``: model versions."""

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
    """Model versions: which is live, which are shadows; each change is one record on the
    control topic (with who and when) that running workers follow without a restart."""


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
