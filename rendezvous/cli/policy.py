"""``rendezvous policy set | show | history``."""

from __future__ import annotations

import click
import msgspec

from rendezvous.cli.common import clear_errors, settings
from rendezvous.messages import ModelRule, Policy, encode


@click.group("policy")
def policy() -> None:
    """The live policy: preference order, default deadline, per-model rules."""


def _rule(text: str) -> tuple[str, ModelRule]:
    """``primary:min_score=0.1,max_score=0.9,min_confidence=0.2`` -> (name, rule)."""
    name, _, body = text.partition(":")
    try:
        fields = {k: float(v) for k, v in (kv.split("=", 1) for kv in body.split(",") if kv)}
        return name, ModelRule(**fields)
    except (ValueError, TypeError) as exc:
        raise click.BadParameter(f"{text!r}: expected model:min_score=..,max_score=..,"
                                 f"min_confidence=.. ({exc})") from exc


@policy.command("set")
@click.option("--prefer", required=True,
              help="Models in order of preference, comma-separated (e.g. primary,canary).")
@click.option("--deadline-ms", type=float, default=None,
              help="Default deadline of requests that name none (default: keep the current).")
@click.option("--rule", "rules", multiple=True,
              help="A validity rule, e.g. primary:min_score=0,max_score=1,min_confidence=0.2; "
                   "repeat for more models.")
@click.option("--map-scores/--no-map-scores", default=None,
              help="Put a fallback's score on the preferred model's scale by quantiles "
                   "(default: keep the current; initially on).")
@click.option("--prefer-in-time/--no-prefer-in-time", default=None,
              help="Answer with the valid answer in hand when a more preferred model's live "
                   "p99 latency says it cannot answer in time (default: keep the current; "
                   "initially off).")
@click.option("--actor", default=None,
              help="Who makes this change, for the audit trail (default: the OS user); the "
                   "authenticated Kafka user is recorded too.")
def set_(prefer: str, deadline_ms: float | None, rules: tuple[str, ...],
         map_scores: bool | None, prefer_in_time: bool | None, actor: str | None) -> None:
    """Publish a new policy; running `serve` instances apply it without a restart."""
    from rendezvous.service.control import publish_policy, read_policy

    s = settings()
    names = [n.strip() for n in prefer.split(",") if n.strip()]
    if not names:
        raise click.BadParameter("name at least one model", param_hint="--prefer")
    with clear_errors():
        current = read_policy(s) or Policy(deadline_ms=s.default_deadline_ms)
        new = Policy(prefer=names,
                     deadline_ms=deadline_ms if deadline_ms is not None else current.deadline_ms,
                     rules=dict(_rule(r) for r in rules),
                     map_scores=current.map_scores if map_scores is None else map_scores,
                     prefer_in_time=(current.prefer_in_time if prefer_in_time is None
                                     else prefer_in_time))
        published = publish_policy(s, new, actor)
    click.echo(f"published: {encode(published).decode()}")


@policy.command()
def show() -> None:
    """Print the policy in force (as JSON)."""
    from rendezvous.service.control import read_policy

    s = settings()
    with clear_errors():
        current = read_policy(s)
    if current is None:
        click.echo("# no policy published; the default applies", err=True)
        current = Policy(deadline_ms=s.default_deadline_ms)
    click.echo(msgspec.json.format(encode(current), indent=2).decode())


@policy.command()
def history() -> None:
    """Print every change on the control topic, oldest first: when (UTC), who, the
    authenticated principal, what kind, and the record."""
    from rendezvous.service.audit import describe
    from rendezvous.service.audit import history as changes

    with clear_errors():
        found = changes(settings())
    if not found:
        click.echo("# no recorded changes", err=True)
    for change in found:
        click.echo(describe(change))
