"""``rendezvous model list | shadow | unshadow | promote | rollback``: the model registry."""

from __future__ import annotations

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
    from rendezvous.registry import default_actor
    from rendezvous.registry.commands import change, describe

    with clear_errors():
        entry = change(settings(), name, action, version, actor=actor or default_actor(),
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
